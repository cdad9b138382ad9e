// Package testutil holds helpers shared by the project's tests: a real
// embedded NATS JetStream server per test, and polling for a condition
// instead of sleeping.
package testutil
