package volume

import (
	"context"
	"log/slog"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/record"
)

// Event reasons the controller records, as Kubernetes'.
const (
	ReasonProvisioningSucceeded = "ProvisioningSucceeded"
	ReasonProvisioningFailed    = "ProvisioningFailed"
	ReasonWaitForFirstConsumer  = "WaitForFirstConsumer"
	ReasonFailedBinding         = "FailedBinding"
	ReasonVolumeFailedDelete    = "VolumeFailedDelete"
	ReasonVolumeDeleted         = "VolumeDeleted"
	ReasonClaimLost             = "ClaimLost"
)

// DefaultVolumesDir is the volumes directory of a node that does not say
// (the agent's default data dir).
const DefaultVolumesDir = "/var/lib/kyb/agent/volumes"

// Deleter asks the node of a provisioned local volume to remove its
// directory. It returns nil once asked; the node confirms (the node verb
// volumedeleted), and the apiserver then removes the volume object, which
// ends the reclaim. The controller asks again after ResendAfter, and when
// the node changes (comes back), while the volume is still there.
type Deleter interface {
	DeleteVolume(ctx context.Context, node string, pv *api.PersistentVolume) error
}

// Config configures the controller. The zero value is usable, but a
// volume of reclaim policy Delete waits for a Deleter.
type Config struct {
	// Workers is how many keys are reconciled at once; default 2.
	Workers int
	// Deleter removes provisioned directories; nil: Delete waits.
	Deleter Deleter
	// ResendAfter is how long a volume being deleted waits for its node
	// before the node is asked again; default 30s.
	ResendAfter time.Duration
	// Recorder records the controller's events; default none.
	Recorder record.EventRecorder
}

var (
	pvKind    = api.KindOf(&api.PersistentVolume{})
	pvcKind   = api.KindOf(&api.PersistentVolumeClaim{})
	classKind = api.KindOf(&api.StorageClass{})
	podKind   = api.KindOf(&api.Pod{})
	nodeKind  = api.KindOf(&api.Node{})
)

// Controller binds claims and reclaims volumes. Create it with New and
// add it to its Manager. Safe for concurrent use.
type Controller struct {
	st      *store.Store
	cfg     Config
	log     *slog.Logger
	pvs     framework.Lister
	pvcs    framework.Lister
	classes framework.Lister
	pods    framework.Lister
	nodes   framework.Lister
	ctl     *framework.Controller
	byClaim *claimIndex // volumes by the claim their claimRef names
}

// New returns the controller over st, reading from mgr's shared informers.
func New(mgr *framework.Manager, st *store.Store, cfg Config, log *slog.Logger) *Controller {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Recorder == nil {
		cfg.Recorder = record.Nop{}
	}
	if cfg.ResendAfter <= 0 {
		cfg.ResendAfter = 30 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("controller", "persistentvolume")
	pvInf, pvcInf, scInf := mgr.Informer(pvKind), mgr.Informer(pvcKind), mgr.Informer(classKind)
	podInf, nodeInf := mgr.Informer(podKind), mgr.Informer(nodeKind)
	c := &Controller{st: st, cfg: cfg, log: log, pvs: pvInf.Lister(), pvcs: pvcInf.Lister(),
		classes: scInf.Lister(), pods: podInf.Lister(), nodes: nodeInf.Lister(), byClaim: newClaimIndex()}
	pvInf.AddHandler(c.byClaim.handler())
	c.ctl = framework.NewController("persistentvolume", c, framework.Options{Workers: cfg.Workers, Logger: log})
	// A claim: itself and the volume it names. A volume: itself and the
	// claim it names, and, when free, every pending claim (one may fit).
	c.ctl.Watch(pvcInf, func(obj api.Object) []framework.Key {
		pvc := obj.(*api.PersistentVolumeClaim)
		keys := []framework.Key{framework.KeyOf(pvc)}
		if pvc.Spec.VolumeName != "" {
			keys = append(keys, framework.Key{Name: pvc.Spec.VolumeName})
		}
		for _, name := range c.byClaim.volumes(framework.KeyOf(pvc)) {
			keys = append(keys, framework.Key{Name: name})
		}
		return keys
	})
	c.ctl.Watch(pvInf, func(obj api.Object) []framework.Key {
		pv := obj.(*api.PersistentVolume)
		keys := []framework.Key{{Name: pv.Name}}
		if r := pv.Spec.ClaimRef; r != nil {
			return append(keys, framework.Key{Namespace: r.Namespace, Name: r.Name})
		}
		return append(keys, c.pendingClaims()...)
	})
	// A new or changed class (a default appearing): every pending claim.
	c.ctl.Watch(scInf, func(api.Object) []framework.Key { return c.pendingClaims() })
	// A pod that ends or goes may let a released volume be deleted.
	c.ctl.Watch(podInf, func(obj api.Object) []framework.Key {
		p := obj.(*api.Pod)
		var keys []framework.Key
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim == nil {
				continue
			}
			for _, name := range c.byClaim.volumes(framework.Key{Namespace: p.Namespace, Name: v.PersistentVolumeClaim.ClaimName}) {
				keys = append(keys, framework.Key{Name: name})
			}
		}
		return keys
	})
	// A node (back): the volumes being deleted there are asked for again.
	c.ctl.Watch(nodeInf, func(obj api.Object) []framework.Key {
		var keys []framework.Key
		for _, o := range c.pvs.List("", nil) {
			pv := o.(*api.PersistentVolume)
			if pv.Status.Phase == api.VolumeReleased && pv.NodeName() == obj.GetObjectMeta().Name {
				keys = append(keys, framework.KeyOf(pv))
			}
		}
		return keys
	})
	return c
}

// pendingClaims returns the keys of every claim not bound yet.
func (c *Controller) pendingClaims() []framework.Key {
	var keys []framework.Key
	for _, o := range c.pvcs.List("", nil) {
		if pvc := o.(*api.PersistentVolumeClaim); pvc.Status.Phase != api.ClaimBound {
			keys = append(keys, framework.KeyOf(pvc))
		}
	}
	return keys
}

// Run reconciles until ctx ends and returns nil then.
func (c *Controller) Run(ctx context.Context) error { return c.ctl.Run(ctx) }

// Reconcile syncs a volume (key without namespace) or a claim.
func (c *Controller) Reconcile(ctx context.Context, key framework.Key) (framework.Result, error) {
	if key.Namespace == "" {
		return c.syncVolume(ctx, key.Name)
	}
	return c.syncClaim(ctx, key)
}

// podDone reports whether a pod no longer runs (finished, or gone from
// the cache: OnDelete hands the last state, which this also covers when
// its deletion was marked).
func podDone(p *api.Pod) bool {
	return p.Status.Phase == api.PodSucceeded || p.Status.Phase == api.PodFailed || p.DeletionTimestamp != nil
}
