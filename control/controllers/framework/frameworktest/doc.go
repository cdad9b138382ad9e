// Package frameworktest is the controllers' shared test harness: OpenStore
// (a store on a real embedded JetStream with the "default" namespace) and
// Run (a framework.Manager run for the length of a test).
package frameworktest
