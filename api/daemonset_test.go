package api

import (
	"testing"
)

func TestValidateDaemonSet(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	ios := func(v IntOrString) *IntOrString { return &v }
	sel := &LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	ds := func(f func(s *DaemonSetSpec)) *DaemonSet {
		d := &DaemonSet{ObjectMeta: ObjectMeta{Name: "agent", Namespace: "default"}, Spec: DaemonSetSpec{Selector: sel, Template: appsTemplate()}}
		f(&d.Spec)
		return d
	}
	cases := []struct {
		name  string
		obj   *DaemonSet
		field string // "" when valid
	}{
		{"valid", ds(func(*DaemonSetSpec) {}), ""},
		{"valid OnDelete", ds(func(s *DaemonSetSpec) { s.UpdateStrategy.Type = OnDeleteDaemonSetStrategyType }), ""},
		{"valid percent", ds(func(s *DaemonSetSpec) {
			s.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{MaxUnavailable: ios(FromString("20%"))}
		}), ""},
		{"no selector", ds(func(s *DaemonSetSpec) { s.Selector = nil }), "spec.selector"},
		{"selector not matching", ds(func(s *DaemonSetSpec) { s.Selector = &LabelSelector{MatchLabels: map[string]string{"app": "db"}} }), "spec.template.metadata.labels"},
		{"template without image", ds(func(s *DaemonSetSpec) { s.Template.Spec.Containers[0].Image = "" }), "spec.template.spec.containers[0].image"},
		{"template nodeName", ds(func(s *DaemonSetSpec) { s.Template.Spec.NodeName = "n1" }), "spec.template.spec.nodeName"},
		{"restartPolicy Never", ds(func(s *DaemonSetSpec) { s.Template.Spec.RestartPolicy = RestartPolicyNever }), "spec.template.spec.restartPolicy"},
		{"negative minReadySeconds", ds(func(s *DaemonSetSpec) { s.MinReadySeconds = -1 }), "spec.minReadySeconds"},
		{"negative revisionHistoryLimit", ds(func(s *DaemonSetSpec) { s.RevisionHistoryLimit = i32(-1) }), "spec.revisionHistoryLimit"},
		{"bad strategy", ds(func(s *DaemonSetSpec) { s.UpdateStrategy.Type = "Recreate" }), "spec.updateStrategy.type"},
		{"OnDelete with rollingUpdate", ds(func(s *DaemonSetSpec) {
			s.UpdateStrategy = DaemonSetUpdateStrategy{Type: OnDeleteDaemonSetStrategyType, RollingUpdate: &RollingUpdateDaemonSet{}}
		}), "spec.updateStrategy.rollingUpdate"},
		{"maxUnavailable 0", ds(func(s *DaemonSetSpec) {
			s.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{MaxUnavailable: ios(FromInt(0))}
		}), "spec.updateStrategy.rollingUpdate.maxUnavailable"},
		{"maxUnavailable bad percent", ds(func(s *DaemonSetSpec) {
			s.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{MaxUnavailable: ios(FromString("lots"))}
		}), "spec.updateStrategy.rollingUpdate.maxUnavailable"},
		{"maxUnavailable negative", ds(func(s *DaemonSetSpec) {
			s.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{MaxUnavailable: ios(FromInt(-1))}
		}), "spec.updateStrategy.rollingUpdate.maxUnavailable"},
		{"valid surge", ds(func(s *DaemonSetSpec) {
			s.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{MaxSurge: ios(FromString("10%")), MaxUnavailable: ios(FromInt(0))}
		}), ""},
		{"maxSurge with maxUnavailable", ds(func(s *DaemonSetSpec) {
			s.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{MaxSurge: ios(FromInt(1)), MaxUnavailable: ios(FromInt(1))}
		}), "spec.updateStrategy.rollingUpdate.maxSurge"},
		{"maxSurge with a defaulted maxUnavailable", ds(func(s *DaemonSetSpec) {
			s.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{MaxSurge: ios(FromInt(1))}
		}), "spec.updateStrategy.rollingUpdate.maxSurge"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			Default(tc.obj)
			err := Validate(tc.obj)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid object refused: %v", err)
				}
				return
			}
			st, ok := err.(*Status)
			if !ok || st.Code != 422 {
				t.Fatalf("got %v, want a 422", err)
			}
			for _, c := range st.Causes {
				if c.Field == tc.field {
					return
				}
			}
			t.Fatalf("causes %+v do not name %s", st.Causes, tc.field)
		})
	}
}

func TestDaemonSetSelectorImmutable(t *testing.T) {
	old := &DaemonSet{ObjectMeta: ObjectMeta{Name: "agent", Namespace: "default"},
		Spec: DaemonSetSpec{Selector: &LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: appsTemplate()}}
	Default(old)
	nw := DeepCopy(old)
	nw.Spec.Selector = &LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "x"}}
	nw.Spec.Template.Labels = map[string]string{"app": "web", "tier": "x"}
	st, ok := ValidateUpdate(old, nw).(*Status)
	if !ok || st.Code != 422 || len(st.Causes) == 0 || st.Causes[0].Field != "spec.selector" {
		t.Fatalf("got %v, want a 422 naming spec.selector", st)
	}
}

func TestDefaultDaemonSet(t *testing.T) {
	d := &DaemonSet{ObjectMeta: ObjectMeta{Name: "agent"}, Spec: DaemonSetSpec{Template: appsTemplate()}}
	Default(d)
	s := d.Spec
	if s.UpdateStrategy.Type != RollingUpdateDaemonSetStrategyType || s.UpdateStrategy.RollingUpdate.MaxUnavailable.String() != "1" ||
		s.UpdateStrategy.RollingUpdate.MaxSurge.String() != "0" || *s.RevisionHistoryLimit != 10 {
		t.Fatalf("defaults: %+v", s)
	}
	// The daemon tolerations, with no tolerationSeconds: the pod defaults
	// must not add the 300 s ones that would let eviction remove a daemon.
	want := map[string]TaintEffect{
		TaintNodeNotReady: TaintNoExecute, TaintNodeUnreachable: TaintNoExecute, TaintNodeUnschedulable: TaintNoSchedule,
		TaintNodeDiskPressure: TaintNoSchedule, TaintNodeMemoryPressure: TaintNoSchedule, TaintNodePIDPressure: TaintNoSchedule,
	}
	got := map[string]int{}
	for _, tol := range s.Template.Spec.Tolerations {
		got[tol.Key]++
		if e, ok := want[tol.Key]; !ok || tol.Effect != e || tol.Operator != TolerationOpExists || tol.TolerationSeconds != nil {
			t.Errorf("toleration %+v", tol)
		}
	}
	for k := range want {
		if got[k] != 1 {
			t.Errorf("%d tolerations of %s, want 1", got[k], k)
		}
	}
	// Defaulting again changes nothing (so re-applying is unchanged).
	again := DeepCopy(d)
	Default(again)
	if len(again.Spec.Template.Spec.Tolerations) != len(s.Template.Spec.Tolerations) {
		t.Fatalf("defaulting twice added tolerations: %+v", again.Spec.Template.Spec.Tolerations)
	}
}
