package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// chromium returns Debian's chromium, or skips the test without it (but
// never when CI=true: CI installs it).
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (CI installs it: .ci/run)")
	}
	t.Skip("chromium is not installed (apt-get install chromium)")
	return ""
}

// newChrome starts a headless chromium of its own (its own cookies) and
// returns a tab's context.
func newChrome(t testing.TB) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs steps with a deadline, failing the test with what was being done.
func do(t testing.TB, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until expr is true in the page.
func waitJS(t testing.TB, ctx context.Context, what, expr string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(10*time.Millisecond))); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// signIn signs in through the login page, pasting creds.
func signIn(t testing.TB, ctx context.Context, base string, creds []byte, namespace string) {
	t.Helper()
	do(t, ctx, "open the login page", chromedp.Navigate(base+"login"), chromedp.WaitVisible(chromedp.CSS(`textarea[name=creds]`)))
	// Pasted as typed: the textarea's value (SetValue compares it with the
	// text given, and a textarea normalizes line ends).
	text, _ := json.Marshal(string(creds))
	ns, _ := json.Marshal(namespace)
	eval[string](t, ctx, `document.querySelector('textarea[name=creds]').value = `+string(text)+`;
		document.querySelector('input[name=namespace]').value = `+string(ns))
	do(t, ctx, "sign in", chromedp.Click(chromedp.CSS(`#login`)))
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.WaitVisible(chromedp.CSS(`main#live`))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		t.Fatalf("sign in: %v; the page shows %s", err, body)
	}
}

// markPage sets a variable a reload would lose.
func markPage(t testing.TB, ctx context.Context) {
	t.Helper()
	eval[int](t, ctx, `window.kybMark = 42`)
}

func notReloaded(t testing.TB, ctx context.Context) {
	t.Helper()
	if v := eval[int](t, ctx, `window.kybMark || 0`); v != 42 {
		t.Fatalf("the page was reloaded (mark %d)", v)
	}
}

// TestBrowser drives Debian's chromium against a real control plane and an
// agent (fake runtime): an applied pod appears without a reload, its log
// tails, a scale action changes the replicas, a view user gets no delete
// button, and a narrow window does not scroll sideways.
func TestBrowser(t *testing.T) {
	chromium(t)
	c := startCluster(t, true)
	admin := newChrome(t)
	signIn(t, admin, c.url, adminCreds(t, c.cp), "")

	t.Run("pod appears without reload", func(t *testing.T) {
		do(t, admin, "open the pods", chromedp.Navigate(c.url+"pods?ns=default"), chromedp.WaitVisible(chromedp.CSS(`table.pods`)))
		markPage(t, admin)
		waitJS(t, admin, "live stream open", `document.body.hasAttribute('data-rendered')`)
		c.apply(t, podYAML("default", "hello", "fake://run"))
		waitJS(t, admin, "the pod's row", `!!document.querySelector('tr[data-pod="default/hello"]')`)
		waitJS(t, admin, "the pod running", `(document.querySelector('tr[data-pod="default/hello"] td.status')||{}).textContent === 'Running'`)
		notReloaded(t, admin)
	})

	t.Run("logs tail", func(t *testing.T) {
		args := []string{}
		// 15 s of output, so a slow start still leaves lines to tail.
		const ticks = 100
		for i := 1; i <= ticks; i++ {
			args = append(args, "out", fmt.Sprintf("tick-%d", i), "sleep", "150ms")
		}
		args = append(args, "sleep", "forever")
		c.apply(t, podYAML("default", "talker", "fake://prog", args...))
		do(t, admin, "open the pod", chromedp.Navigate(c.url+"pods/default/talker"), chromedp.WaitVisible(chromedp.CSS(`#log`)))
		markPage(t, admin)
		waitJS(t, admin, "a first line", `document.getElementById('log').textContent.includes('tick-')`)
		text := eval[string](t, admin, `document.getElementById('log').textContent`)
		last := 0
		for i := 1; i <= ticks; i++ {
			if strings.Contains(text, fmt.Sprintf("tick-%d\n", i)) || strings.HasSuffix(text, fmt.Sprintf("tick-%d", i)) {
				last = i
			}
		}
		if last > ticks-4 {
			t.Fatalf("the log was complete when first seen (up to tick-%d): nothing left to tail", last)
		}
		next := fmt.Sprintf("tick-%d", last+3)
		waitJS(t, admin, "a later line ("+next+")", `Array.from(document.querySelectorAll('#log div')).some(d => d.textContent === '`+next+`')`)
		notReloaded(t, admin)
		// Lines arrive once each, in order.
		lines := eval[[]string](t, admin, `Array.from(document.querySelectorAll('#log div')).map(d => d.textContent)`)
		want := 0
		for _, l := range lines {
			if !strings.HasPrefix(l, "tick-") {
				continue
			}
			want++
			if l != fmt.Sprintf("tick-%d", want) {
				t.Fatalf("log lines out of order or repeated: %q", lines)
			}
		}
		// The pod's events are live too.
		waitJS(t, admin, "the Started event", `document.querySelector('table.events').textContent.includes('Started')`)
	})

	t.Run("scale", func(t *testing.T) {
		c.apply(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: "fake://run"}]}
`)
		row := `tr[data-workload="Deployment/default/web"]`
		do(t, admin, "open the workloads", chromedp.Navigate(c.url+"workloads?ns=default"), chromedp.WaitVisible(chromedp.CSS(`section[data-kind=Deployment]`)))
		markPage(t, admin)
		waitJS(t, admin, "the deployment ready", `(document.querySelector('`+row+` td.ready')||{}).textContent === '1'`)
		do(t, admin, "scale to 3",
			chromedp.Focus(chromedp.CSS(row+` input[name=replicas]`)),
			chromedp.SetValue(chromedp.CSS(row+` input[name=replicas]`), "3"),
			chromedp.Click(chromedp.CSS(row+` button.scale`)),
		)
		testutil.Eventually(t, 10*time.Second, func() error {
			obj, err := c.admin.Get(c.ctx, "Deployment", "default", "web")
			if err != nil {
				return err
			}
			if r := obj.(*api.Deployment).Spec.Replicas; r == nil || *r != 3 {
				return fmt.Errorf("replicas %v, want 3", r)
			}
			return nil
		})
		waitJS(t, admin, "3 ready replicas shown", `(document.querySelector('`+row+` td.ready')||{}).textContent === '3'`)
		notReloaded(t, admin)
	})

	t.Run("view user sees no delete button", func(t *testing.T) {
		c.apply(t, namespaceYAML("team-a"))
		c.apply(t, viewBinding("team-a", "viewer"))
		c.apply(t, podYAML("team-a", "shown", "fake://run"))
		row := `tr[data-pod="team-a/shown"]`
		// The admin has the button (so its absence below means something).
		do(t, admin, "admin opens team-a", chromedp.Navigate(c.url+"pods?ns=team-a"), chromedp.WaitVisible(chromedp.CSS(row)))
		if n := eval[int](t, admin, `document.querySelectorAll('`+row+` button.delete').length`); n != 1 {
			t.Fatalf("the admin sees %d delete buttons, want 1", n)
		}
		viewer := newChrome(t)
		signIn(t, viewer, c.url, userCreds(t, c.cp, "viewer"), "team-a")
		do(t, viewer, "viewer opens team-a", chromedp.Navigate(c.url+"pods?ns=team-a"), chromedp.WaitVisible(chromedp.CSS(row)))
		waitJS(t, viewer, "live stream open", `document.body.hasAttribute('data-rendered')`)
		if n := eval[int](t, viewer, `document.querySelectorAll('button.delete, button.scale, button.restart').length`); n != 0 {
			t.Fatalf("the viewer sees %d action buttons, want none", n)
		}
		do(t, viewer, "viewer opens the pod", chromedp.Navigate(c.url+"pods/team-a/shown"), chromedp.WaitVisible(chromedp.CSS(`#pod-status`)))
		if n := eval[int](t, viewer, `document.querySelectorAll('button.delete').length`); n != 0 {
			t.Fatalf("the viewer sees %d delete buttons on the pod page, want none", n)
		}
	})

	t.Run("usage plots", func(t *testing.T) {
		// The agent samples every 200 ms here; wait until the pod has samples.
		testutil.Eventually(t, 20*time.Second, func() error {
			r, err := c.admin.Top(c.ctx, api.TopRequest{Kind: "pods", Name: "hello", Series: true})
			if err != nil {
				return err
			}
			if len(r.Pods) != 1 || len(r.Pods[0].Series) < 2 {
				return fmt.Errorf("samples of hello: %+v", r.Pods)
			}
			return nil
		})
		do(t, admin, "open the pod", chromedp.Navigate(c.url+"pods/default/hello"), chromedp.WaitVisible(chromedp.CSS(`#pod-status`)))
		waitJS(t, admin, "the pod's plots", `document.querySelectorAll('.usage-plots svg.plot polyline').length === 2`)
		do(t, admin, "open the overview", chromedp.Navigate(c.url), chromedp.WaitVisible(chromedp.CSS(`#usage`)))
		waitJS(t, admin, "the node's plots", `document.querySelectorAll('#usage svg.plot polyline').length >= 2`)
		if n := eval[int](t, admin, `document.querySelectorAll('#usage .problem').length`); n != 0 {
			t.Fatalf("the overview shows %d problems in the usage section", n)
		}
	})

	t.Run("narrow window", func(t *testing.T) {
		do(t, admin, "a phone-sized window", chromedp.EmulateViewport(375, 740), chromedp.Navigate(c.url+"pods?ns=default"),
			chromedp.WaitVisible(chromedp.CSS(`tr[data-pod="default/hello"]`)))
		if w := eval[int](t, admin, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
			t.Fatalf("the page is %dpx wider than a 375px window", w)
		}
		if v := eval[bool](t, admin, `getComputedStyle(document.querySelector('table.pods th.opt')).display === 'none'`); !v {
			t.Fatal("the optional columns are still shown in a narrow window")
		}
	})
}
