// Package dashboard is kyb's web dashboard: an HTTP server with embedded
// templates and static files (no Node toolchain, no CDN), served by
// `kyb server` and `kyb up` on --http.
//
// A user signs in with the text of a NATS .creds file (what `kyb user
// create` writes); the dashboard opens a NATS connection with those
// credentials for the session, so every request it makes for the user —
// lists, watches, logs, deletes, scales, can-i — reaches the apiserver
// with the user's own identity, checked by the NATS server, and RBAC
// decides. The session is a random cookie (HttpOnly, SameSite=Strict,
// Secure over TLS); actions are POSTs carrying the session's CSRF token
// and a same-origin Origin.
//
// Views are rendered on the server and kept live by server-sent events:
// each open page lists the objects it shows, watches them through
// kyb.api.v1.watch, and sends the re-rendered fragment after each burst of
// changes; the pod page also tails the container's log. See
// docs/dashboard.md.
package dashboard
