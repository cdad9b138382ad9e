package auth

import (
	"fmt"
	"strings"

	"github.com/kybernetes/kybernetes/api"
)

// Export is one API subject (possibly with wildcards) served by the control
// plane to users. Stream marks a verb that answers with several messages
// and ends with an empty one (watch, logs).
type Export struct {
	Subject string
	Stream  bool
}

// ControlUser is the user name of the control plane's own connections.
const ControlUser = "kyb-control"

// StreamResponseThreshold bounds how long NATS keeps the reply route of a
// streaming verb for a user; a stream ends (and is resumed by the client)
// within it.
const StreamResponseThreshold = "5m"

// NATSConfig returns the nats-server configuration of the accounts, their
// exports and imports, and the auth callout: see the package doc. password
// is the control plane's own connections' password; api lists the
// kyb.api.v1 subjects users may call.
func (a *Authority) NATSConfig(password string, exports []Export) string {
	var b strings.Builder
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	svcExport := func(subject string, to []string, stream bool) {
		fmt.Fprintf(&b, "      {service: %s, accounts: [%s]", q(subject), strings.Join(to, ", "))
		if stream {
			fmt.Fprintf(&b, ", response_type: stream, response_threshold: %s", q(StreamResponseThreshold))
		}
		b.WriteString("}\n")
	}
	svcImport := func(subject string, share bool) {
		fmt.Fprintf(&b, "      {service: {account: %s, subject: %s}", AccountControl, q(subject))
		if share {
			b.WriteString(", share: true")
		}
		b.WriteString("}\n")
	}

	fmt.Fprintf(&b, "system_account: %s\n", AccountSystem)
	b.WriteString("accounts {\n")
	fmt.Fprintf(&b, "  %s {}\n", AccountSystem)

	fmt.Fprintf(&b, "  %s {\n    jetstream: enabled\n", AccountControl)
	fmt.Fprintf(&b, "    users: [{user: %s, password: %s}]\n", q(ControlUser), q(password))
	b.WriteString("    exports: [\n")
	for _, e := range exports {
		svcExport(e.Subject, []string{AccountUsers}, e.Stream)
	}
	svcExport("$SRV.>", []string{AccountUsers}, false)
	svcExport("kyb.node.>", []string{AccountNodes}, false)
	svcExport("kyb.logs.>", []string{AccountNodes}, false)
	svcExport("kyb.podevents.>", []string{AccountNodes}, false)
	svcExport(api.SubjectJoin, []string{AccountBootstrap}, false)
	fmt.Fprintf(&b, "      {stream: %s, accounts: [%s]}\n", q("kyb.agent.>"), AccountNodes)
	b.WriteString("    ]\n  }\n")

	fmt.Fprintf(&b, "  %s {\n    imports: [\n", AccountUsers)
	for _, e := range exports {
		svcImport(e.Subject, true)
	}
	svcImport("$SRV.>", false)
	b.WriteString("    ]\n  }\n")

	fmt.Fprintf(&b, "  %s {\n    imports: [\n", AccountNodes)
	svcImport("kyb.node.>", true)
	svcImport("kyb.logs.>", false)
	svcImport("kyb.podevents.>", false)
	fmt.Fprintf(&b, "      {stream: {account: %s, subject: %s}}\n", AccountControl, q("kyb.agent.>"))
	b.WriteString("    ]\n  }\n")

	fmt.Fprintf(&b, "  %s {\n    imports: [\n", AccountBootstrap)
	svcImport(api.SubjectJoin, true)
	b.WriteString("    ]\n  }\n")
	b.WriteString("}\n")

	fmt.Fprintf(&b, "authorization {\n  auth_callout {\n    issuer: %s\n    account: %s\n    auth_users: [%s]\n  }\n}\n",
		q(a.pub), AccountControl, q(ControlUser))
	return b.String()
}
