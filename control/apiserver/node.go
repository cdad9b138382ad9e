package apiserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/micro"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
)

var ackOK = []byte(`{"ok":true}`)

// nodeOf returns the node named by a kyb.node.<node>.<verb> subject: the
// caller's identity. The name must be a valid node name (a DNS-1123 label):
// it becomes part of keys and of kyb.agent subjects, and a subject token
// can be far longer than any key may be.
func nodeOf(subject string) (string, error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 || parts[2] == "" {
		return "", api.NewBadRequest("subject is not %s.<node>.<verb>", api.NodeSubjects)
	}
	if msgs := api.ValidateName(nodeKind, parts[2]); len(msgs) > 0 {
		return "", badField("subject (node name)", msgs)
	}
	return parts[2], nil
}

// nodeBody returns the node named by subject and decodes data into v (what
// names it in errors).
func nodeBody(subject string, data []byte, v any, what string) (string, error) {
	node, err := nodeOf(subject)
	if err != nil {
		return "", err
	}
	return node, decodeBody(data, v, what)
}

// parseRegister decodes and checks a register request: the Node the agent
// on subject registers, named after the subject, defaulted and valid.
func parseRegister(subject string, data []byte) (*api.Node, error) {
	in := &api.Node{}
	node, err := nodeBody(subject, data, in, "Node")
	if err != nil {
		return nil, err
	}
	if in.Name != "" && in.Name != node {
		return nil, api.NewForbidden("node %q may not register as another node", node)
	}
	in.Name = node
	api.Default(in)
	if err := api.Validate(in); err != nil {
		return nil, err
	}
	return in, nil
}

// parseHeartbeat checks a heartbeat: the node named by subject, and the
// body, which is optional but when present must be a Heartbeat.
func parseHeartbeat(subject string, data []byte) (string, error) {
	node, err := nodeOf(subject)
	if err == nil && len(bytes.TrimSpace(data)) > 0 {
		err = decodeBody(data, &api.Heartbeat{}, "Heartbeat")
	}
	return node, err
}

// parseNodeStatus decodes and checks a node's status report: valid as the
// status of a Node (capacity and allocatable not negative).
func parseNodeStatus(subject string, data []byte) (string, api.NodeStatus, error) {
	var st api.NodeStatus
	node, err := nodeBody(subject, data, &st, "NodeStatus")
	if err != nil {
		return "", st, err
	}
	if err := api.Validate(&api.Node{ObjectMeta: api.ObjectMeta{Name: node}, Status: st}); err != nil {
		return "", st, err
	}
	return node, st, nil
}

// parsePodStatus decodes and checks a pod status batch of the node on
// subject.
func parsePodStatus(subject string, data []byte) (string, *api.PodStatusBatch, error) {
	batch := &api.PodStatusBatch{}
	node, err := nodeBody(subject, data, batch, "PodStatusBatch")
	if err == nil {
		err = checkPodStatusBatch(batch)
	}
	if err != nil {
		return "", nil, err
	}
	return node, batch, nil
}

func (s *Server) handleRegister(req micro.Request) {
	in, err := parseRegister(req.Subject(), req.Data())
	if err != nil {
		syncErr(req, err)
		return
	}
	node := in.Name
	s.dispatchNode(req, func(ctx context.Context) ([]byte, error) {
		n, err := s.registerNode(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("register node %s: %w", node, err)
		}
		return encode(n)
	})
}

// registerNode creates or updates the Node of an agent: labels are merged
// (the agent's win), taints and unschedulable are the agent's only on
// first registration (afterwards they belong to admins), the status is the
// agent's, and a pod CIDR is assigned once and kept.
func (s *Server) registerNode(ctx context.Context, in *api.Node) (*api.Node, error) {
	s.cidrMu.Lock()
	defer s.cidrMu.Unlock()
	var out *api.Node
	gaveUp := func() error { return api.NewConflict("Node", in.Name, "changed concurrently too often; try again") }
	err := casLoop(ctx, gaveUp, func() error {
		obj, err := s.st.Get(ctx, nodeKind, "", in.Name)
		if err != nil && !api.IsNotFound(err) {
			return err
		}
		var n *api.Node
		create := obj == nil
		if create {
			n = &api.Node{
				ObjectMeta: api.ObjectMeta{Name: in.Name, Labels: in.Labels, Annotations: in.Annotations},
				Spec:       api.NodeSpec{Taints: in.Spec.Taints, Unschedulable: in.Spec.Unschedulable},
			}
			api.Default(n)
		} else {
			n = obj.(*api.Node)
			if len(in.Labels) > 0 && n.Labels == nil {
				n.Labels = map[string]string{}
			}
			for k, v := range in.Labels {
				n.Labels[k] = v
			}
			// Where its local volumes live may move with its data dir.
			if v := in.Annotations[api.AnnotationVolumesDir]; v != "" {
				if n.Annotations == nil {
					n.Annotations = map[string]string{}
				}
				n.Annotations[api.AnnotationVolumesDir] = v
			}
		}
		n.Status = in.Status
		if n.Spec.PodCIDR == "" {
			cidr, err := s.allocateCIDR(ctx)
			if err != nil {
				return err
			}
			n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
		}
		if create {
			err = s.st.Create(ctx, n)
		} else {
			err = s.st.Update(ctx, n)
		}
		if api.IsAlreadyExists(err) || api.IsConflict(err) || api.IsNotFound(err) {
			return again(err)
		}
		if err != nil {
			return err
		}
		s.writeThrough(n)
		// Another apiserver may have handed out the same range at the same
		// time; the node with the smaller name keeps it, the other retries.
		lost, err := s.cidrLost(ctx, n)
		if err != nil {
			return err
		}
		if !lost {
			out = n
			return nil
		}
		s.log.Warn("pod CIDR assigned twice; reassigning", "node", n.Name, "cidr", n.Spec.PodCIDR)
		n.Spec.PodCIDR, n.Spec.PodCIDRs = "", nil
		if err := s.st.Update(ctx, n); err != nil && !api.IsConflict(err) {
			return err
		}
		return again(api.NewConflict("Node", n.Name, "pod CIDR assigned twice"))
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// allocateCIDR returns the first node-sized range of the cluster CIDR that
// no stored node holds. It reads the store, not the cache, so that a range
// is never handed out twice by this server.
func (s *Server) allocateCIDR(ctx context.Context) (string, error) {
	nodes, _, err := s.st.List(ctx, nodeKind, listOptions(""))
	if err != nil {
		return "", fmt.Errorf("list nodes: %w", err)
	}
	used := map[string]bool{}
	for _, o := range nodes {
		n := o.(*api.Node)
		used[n.Spec.PodCIDR] = true
		for _, c := range n.Spec.PodCIDRs {
			used[c] = true
		}
	}
	a := s.cidr.Addr().As4()
	base := binary.BigEndian.Uint32(a[:])
	size := s.cfg.NodeCIDRMaskSize
	step := uint32(1) << (32 - size)
	count := uint32(1) << (size - s.cidr.Bits())
	for i := range count {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], base+i*step)
		p := netip.PrefixFrom(netip.AddrFrom4(b), size).String()
		if !used[p] {
			return p, nil
		}
	}
	return "", api.NewUnavailable("no free /%d pod CIDR left in cluster CIDR %s", size, s.cidr)
}

// cidrLost reports whether another node holds n's pod CIDR and keeps it.
func (s *Server) cidrLost(ctx context.Context, n *api.Node) (bool, error) {
	nodes, _, err := s.st.List(ctx, nodeKind, listOptions(""))
	if err != nil {
		return false, fmt.Errorf("list nodes: %w", err)
	}
	for _, o := range nodes {
		other := o.(*api.Node)
		if other.Name != n.Name && other.Spec.PodCIDR == n.Spec.PodCIDR && other.Name < n.Name {
			return true, nil
		}
	}
	return false, nil
}

func (s *Server) handleHeartbeat(req micro.Request) {
	node, err := parseHeartbeat(req.Subject(), req.Data())
	if err != nil {
		syncErr(req, err)
		return
	}
	s.dispatchNode(req, func(ctx context.Context) ([]byte, error) {
		if s.cache.get(nodeKind, "", node) == nil {
			if _, err := s.st.Get(ctx, nodeKind, "", node); err != nil {
				return nil, fmt.Errorf("heartbeat of node %s: %w (register first)", node, err)
			}
		}
		// The server's clock, not the agent's: liveness must not depend on skew.
		if err := s.hb.Beat(ctx, node, time.Now()); err != nil {
			return nil, fmt.Errorf("heartbeat of node %s: %w", node, err)
		}
		return ackOK, nil
	})
}

func (s *Server) handleNodeStatus(req micro.Request) {
	node, st, err := parseNodeStatus(req.Subject(), req.Data())
	if err != nil {
		syncErr(req, err)
		return
	}
	s.dispatchNode(req, func(ctx context.Context) ([]byte, error) {
		gaveUp := func() error { return api.NewConflict("Node", node, "changed concurrently too often; try again") }
		err := casLoop(ctx, gaveUp, func() error {
			obj, err := s.st.Get(ctx, nodeKind, "", node)
			if err != nil {
				return fmt.Errorf("update status of node %s: %w", node, err)
			}
			n := obj.(*api.Node)
			n.Status = st
			err = s.st.Update(ctx, n)
			if api.IsConflict(err) {
				return again(err)
			}
			if err != nil {
				return fmt.Errorf("update status of node %s: %w", node, err)
			}
			s.writeThrough(n)
			return nil
		})
		if err != nil {
			return nil, err
		}
		return ackOK, nil
	})
}

func (s *Server) handlePodStatus(req micro.Request) {
	node, batch, err := parsePodStatus(req.Subject(), req.Data())
	if err != nil {
		syncErr(req, err)
		return
	}
	s.dispatchNode(req, func(ctx context.Context) ([]byte, error) {
		// The pods of a batch are independent: write them concurrently so
		// that their store writes are pipelined instead of each waiting
		// for the one before it to be acknowledged (and synced).
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			first error
			sem   = make(chan struct{}, podStatusParallelism)
		)
		for _, u := range batch.Items {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := s.updatePodStatus(ctx, node, u); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("pod status from node %s: pod %s/%s: %w", node, u.Namespace, u.Name, err)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if first != nil {
			return nil, first
		}
		return ackOK, nil
	})
}

// checkPodStatusBatch refuses a batch naming a pod by a namespace or name
// no pod can have (they become part of keys), with a 400 naming the item.
func checkPodStatusBatch(b *api.PodStatusBatch) error {
	for i, u := range b.Items {
		if u.Namespace != "" {
			if msgs := validation.IsDNS1123Label(u.Namespace); len(msgs) > 0 {
				return badField(fmt.Sprintf("items[%d].namespace", i), msgs)
			}
		}
		if msgs := nameProblems(podKind, u.Name); len(msgs) > 0 {
			return badField(fmt.Sprintf("items[%d].name", i), msgs)
		}
	}
	return nil
}

// podStatusParallelism bounds the store writes in flight for one pod
// status batch.
const podStatusParallelism = 32

// updatePodStatus writes one pod status reported by node. Reports on pods
// that are gone, were re-created (other UID) or are bound to another node
// are ignored. A Finalized report on a pod marked for deletion removes it.
func (s *Server) updatePodStatus(ctx context.Context, node string, u api.PodStatusUpdate) error {
	ns := u.Namespace
	if ns == "" {
		ns = api.DefaultNamespace
	}
	fromStore := false
	gaveUp := func() error { return api.NewConflict("Pod", u.Name, "changed concurrently too often; try again") }
	return casLoop(ctx, gaveUp, func() error {
		var pod api.Pod
		if e := s.cache.get(podKind, ns, u.Name); e != nil && !fromStore {
			pod = *e.obj.(*api.Pod) // shallow copy: only Status and metadata scalars change
		} else {
			obj, err := s.st.Get(ctx, podKind, ns, u.Name)
			if api.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			pod = *obj.(*api.Pod)
		}
		if pod.UID != u.UID || pod.Spec.NodeName != node {
			if !fromStore {
				fromStore = true // the cache may lag; make sure
				return again(api.NewConflict("Pod", u.Name, "cached pod differs from the report"))
			}
			s.log.Debug("ignoring stale pod status", "node", node, "pod", ns+"/"+u.Name, "uid", u.UID)
			return nil
		}
		if u.Finalized && pod.DeletionTimestamp != nil {
			last, err := s.st.Delete(ctx, podKind, ns, u.Name, pod.ResourceVersion)
			if api.IsConflict(err) {
				fromStore = true
				return again(err)
			}
			if api.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			s.cache.remove(podKind, ns, u.Name, revOf(last))
			return nil
		}
		if sameJSON(pod.Status, u.Status) {
			return nil
		}
		pod.Status = u.Status
		err := s.st.Update(ctx, &pod)
		if api.IsConflict(err) {
			fromStore = true
			return again(err)
		}
		if api.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		s.writeThrough(&pod)
		return nil
	})
}

func sameJSON(a, b any) bool {
	ja, err1 := jsonMarshal(a)
	jb, err2 := jsonMarshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

func (s *Server) handleSync(req micro.Request) {
	node, err := nodeOf(req.Subject())
	if err != nil {
		syncErr(req, err)
		return
	}
	pods, rev := s.cache.nodePods(node)
	var b bytes.Buffer
	b.WriteString(`{"revision":`)
	b.WriteString(strconv.FormatUint(rev, 10))
	b.WriteString(`,"pods":[`)
	for i, p := range pods {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(p)
	}
	b.WriteString(`]}`)
	if max := s.nc.MaxPayload(); int64(b.Len()) > max-listHeadroom {
		syncErr(req, &api.Status{Code: 413, Reason: api.ReasonTooLarge,
			Message: fmt.Sprintf("the %d pods of node %s take %d bytes, more than the max payload %d", len(pods), node, b.Len(), max)})
		return
	}
	if err := req.Respond(b.Bytes()); err != nil {
		s.log.Warn("reply to sync", "node", node, "err", err)
	}
}
