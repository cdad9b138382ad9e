package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

// configKey names a ConfigMap or Secret.
type configKey struct{ kind, ns, name string }

func (k configKey) String() string { return fmt.Sprintf("%s %s/%s", k.kind, k.ns, k.name) }

// configEntry is a fetched object, or the error fetching it gave (a
// NotFound is kept too, so a missing object is not asked for again until
// a notice says it changed).
type configEntry struct {
	obj api.Object
	err error
	at  time.Time
}

// configs fetches the ConfigMaps and Secrets the node's pods reference
// through the node verb kyb.node.<name>.config (the apiserver answers only
// for objects a pod bound to this node references) and keeps them in
// memory, never on disk except as the files of the volumes that name them.
//
// It learns of changes by notices on kyb.agent.<name>.config (a watch the
// apiserver already drives, not polling): a notice drops the entry and
// wakes the pods that use it, which fetch it again, rewrite their volumes
// and start a container that waited for it. As a backstop for notices
// missed while disconnected, every entry is dropped and every pod with
// such references woken on reconnect and every ConfigResync. Safe for
// concurrent use.
type configs struct {
	a       *Agent
	timeout time.Duration
	mu      sync.Mutex
	m       map[configKey]*configEntry
	// epoch grows with every notice and resync: a fetch that began before
	// one may have read the old object, so its result is not kept.
	epoch uint64
}

func newConfigs(a *Agent) *configs {
	return &configs{a: a, timeout: client.DefaultTimeout, m: map[configKey]*configEntry{}}
}

// errConfigNotFound marks a missing ConfigMap, Secret or key.
var errConfigNotFound = errors.New("not found")

// get returns the ConfigMap or Secret kind ns/name, from memory or fetched.
// A missing object is an error wrapping errConfigNotFound.
func (c *configs) get(ctx context.Context, kind, ns, name string) (api.Object, error) {
	k := configKey{kind, ns, name}
	c.mu.Lock()
	e, epoch := c.m[k], c.epoch
	c.mu.Unlock()
	if e != nil {
		return e.obj, e.err
	}
	obj, err := c.fetch(ctx, k)
	if err == nil || errors.Is(err, errConfigNotFound) {
		c.mu.Lock()
		if c.epoch == epoch {
			c.m[k] = &configEntry{obj: obj, err: err, at: time.Now()}
		}
		c.mu.Unlock()
	}
	return obj, err
}

func (c *configs) fetch(ctx context.Context, k configKey) (api.Object, error) {
	body, err := json.Marshal(api.ConfigRequest{Kind: k.kind, Namespace: k.ns, Name: k.name})
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	msg, err := c.a.nc.RequestWithContext(ctx, api.NodeSubject(c.a.cfg.Name, api.NodeVerbConfig), body)
	if errors.Is(err, nats.ErrNoResponders) {
		err = api.NewUnavailable("no kyb apiserver answers")
	}
	if err == nil {
		err = client.ReplyError(msg)
	}
	if api.IsNotFound(err) {
		return nil, fmt.Errorf("%s %q %w in namespace %q", lowerKind(k.kind), k.name, errConfigNotFound, k.ns)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", k, err)
	}
	var obj api.Object
	if k.kind == "Secret" {
		obj = &api.Secret{}
	} else {
		obj = &api.ConfigMap{}
	}
	if err := json.Unmarshal(msg.Data, obj); err != nil {
		return nil, fmt.Errorf("fetch %s: decode: %w", k, err)
	}
	// The agent re-checks what it is handed.
	if m := obj.GetObjectMeta(); m.Namespace != k.ns || m.Name != k.name || api.KindOf(obj).Name != k.kind {
		return nil, fmt.Errorf("fetch %s: the reply is %s %s/%s", k, api.KindOf(obj).Name, m.Namespace, m.Name)
	}
	return obj, nil
}

func lowerKind(kind string) string {
	if kind == "ConfigMap" {
		return "configmap"
	}
	return "secret"
}

// run listens for notices until ctx is done, and drops everything on
// reconnect and every period.
func (c *configs) run(ctx context.Context, period time.Duration) {
	sub, err := c.a.nc.Subscribe(api.AgentSubject(c.a.cfg.Name, api.AgentVerbConfig), c.onNotice)
	if err != nil {
		c.a.log.Error("subscribe to config notices; ConfigMap and Secret changes reach pods only every resync", "err", err)
	} else {
		defer func() { _ = sub.Unsubscribe() }()
	}
	statusCh := c.a.nc.StatusChanged(nats.CONNECTED)
	defer c.a.nc.RemoveStatusListener(statusCh)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-statusCh:
			c.resync()
		case <-t.C:
			c.resync()
		}
	}
}

// onNotice handles one message on kyb.agent.<name>.config.
func (c *configs) onNotice(m *nats.Msg) {
	var n api.ConfigNotice
	if err := json.Unmarshal(m.Data, &n); err != nil || (n.Kind != "ConfigMap" && n.Kind != "Secret") {
		c.a.log.Warn("bad config notice", "err", err)
		return
	}
	k := configKey{n.Kind, n.Namespace, n.Name}
	c.mu.Lock()
	delete(c.m, k)
	c.epoch++
	c.mu.Unlock()
	c.wake(func(p *api.Pod) bool {
		return p.Namespace == k.ns && refersTo(p, k)
	})
}

func refersTo(p *api.Pod, k configKey) bool {
	for _, r := range api.ConfigRefs(&p.Spec) {
		if r.Kind == k.kind && r.Name == k.name {
			return true
		}
	}
	return false
}

// resync drops every entry and wakes every pod that references a
// ConfigMap or Secret.
func (c *configs) resync() {
	c.mu.Lock()
	clear(c.m)
	c.epoch++
	c.mu.Unlock()
	c.wake(func(p *api.Pod) bool { return len(api.ConfigRefs(&p.Spec)) > 0 || hasDownwardVolume(p) })
}

// wake tells the workers whose pod match that their configuration
// changed.
func (c *configs) wake(match func(*api.Pod) bool) {
	c.a.mu.Lock()
	var ws []*podWorker
	for _, w := range c.a.workers {
		if p, _ := w.snapshot(); p != nil && match(p) {
			ws = append(ws, w)
		}
	}
	c.a.mu.Unlock()
	for _, w := range ws {
		w.configChanged()
	}
}
