package api

import (
	"strings"
	"testing"
)

func appsTemplate() PodTemplateSpec {
	return PodTemplateSpec{
		ObjectMeta: ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       PodSpec{Containers: []Container{{Name: "c", Image: "nginx:1"}}},
	}
}

func TestValidateWorkloads(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	ios := func(v IntOrString) *IntOrString { return &v }
	sel := func(app string) *LabelSelector { return &LabelSelector{MatchLabels: map[string]string{"app": app}} }
	cases := []struct {
		name  string
		obj   Object
		field string // "" when valid
	}{
		{"rs valid", &ReplicaSet{ObjectMeta: ObjectMeta{Name: "web"}, Spec: ReplicaSetSpec{Replicas: i32(2), Selector: sel("web"), Template: appsTemplate()}}, ""},
		{"rs selector not matching", &ReplicaSet{ObjectMeta: ObjectMeta{Name: "web"}, Spec: ReplicaSetSpec{Selector: sel("db"), Template: appsTemplate()}}, "spec.template.metadata.labels"},
		{"rs no selector", &ReplicaSet{ObjectMeta: ObjectMeta{Name: "web"}, Spec: ReplicaSetSpec{Template: appsTemplate()}}, "spec.selector"},
		{"rs empty selector", &ReplicaSet{ObjectMeta: ObjectMeta{Name: "web"}, Spec: ReplicaSetSpec{Selector: &LabelSelector{}, Template: appsTemplate()}}, "spec.selector"},
		{"rs negative replicas", &ReplicaSet{ObjectMeta: ObjectMeta{Name: "web"}, Spec: ReplicaSetSpec{Replicas: i32(-1), Selector: sel("web"), Template: appsTemplate()}}, "spec.replicas"},
		{"rs bad operator", &ReplicaSet{ObjectMeta: ObjectMeta{Name: "web"}, Spec: ReplicaSetSpec{Selector: &LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}, Template: appsTemplate()}}, "spec.selector.matchExpressions[0].operator"},
		{"rs template container image", &ReplicaSet{ObjectMeta: ObjectMeta{Name: "web"}, Spec: ReplicaSetSpec{Selector: sel("web"), Template: PodTemplateSpec{ObjectMeta: ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: PodSpec{Containers: []Container{{Name: "c"}}}}}}, "spec.template.spec.containers[0].image"},
		{"deploy valid", &Deployment{ObjectMeta: ObjectMeta{Name: "web"}, Spec: DeploymentSpec{Selector: sel("web"), Template: appsTemplate()}}, ""},
		{"deploy expression selector", &Deployment{ObjectMeta: ObjectMeta{Name: "web"}, Spec: DeploymentSpec{Selector: &LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "app", Operator: "In", Values: []string{"web", "www"}}}}, Template: appsTemplate()}}, ""},
		{"deploy negative replicas", &Deployment{ObjectMeta: ObjectMeta{Name: "web"}, Spec: DeploymentSpec{Replicas: i32(-3), Selector: sel("web"), Template: appsTemplate()}}, "spec.replicas"},
		{"deploy selector not matching", &Deployment{ObjectMeta: ObjectMeta{Name: "web"}, Spec: DeploymentSpec{Selector: sel("api"), Template: appsTemplate()}}, "spec.template.metadata.labels"},
		{"deploy surge and unavailable 0", &Deployment{ObjectMeta: ObjectMeta{Name: "web"}, Spec: DeploymentSpec{Selector: sel("web"), Template: appsTemplate(),
			Strategy: DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &RollingUpdateDeployment{MaxSurge: ios(FromInt(0)), MaxUnavailable: ios(FromString("0%"))}}}}, "spec.strategy.rollingUpdate.maxUnavailable"},
		{"deploy bad percent", &Deployment{ObjectMeta: ObjectMeta{Name: "web"}, Spec: DeploymentSpec{Selector: sel("web"), Template: appsTemplate(),
			Strategy: DeploymentStrategy{RollingUpdate: &RollingUpdateDeployment{MaxSurge: ios(FromString("lots"))}}}}, "spec.strategy.rollingUpdate.maxSurge"},
		{"deploy percent over 100", &Deployment{ObjectMeta: ObjectMeta{Name: "web"}, Spec: DeploymentSpec{Selector: sel("web"), Template: appsTemplate(),
			Strategy: DeploymentStrategy{RollingUpdate: &RollingUpdateDeployment{MaxUnavailable: ios(FromString("150%"))}}}}, "spec.strategy.rollingUpdate.maxUnavailable"},
		{"deploy recreate with rollingUpdate", &Deployment{ObjectMeta: ObjectMeta{Name: "web"}, Spec: DeploymentSpec{Selector: sel("web"), Template: appsTemplate(),
			Strategy: DeploymentStrategy{Type: "Recreate", RollingUpdate: &RollingUpdateDeployment{}}}}, "spec.strategy.rollingUpdate"},
		{"deploy bad strategy", &Deployment{ObjectMeta: ObjectMeta{Name: "web"}, Spec: DeploymentSpec{Selector: sel("web"), Template: appsTemplate(),
			Strategy: DeploymentStrategy{Type: "BlueGreen"}}}, "spec.strategy.type"},
		{"deploy restartPolicy Never", &Deployment{ObjectMeta: ObjectMeta{Name: "web"}, Spec: DeploymentSpec{Selector: sel("web"), Template: func() PodTemplateSpec {
			t := appsTemplate()
			t.Spec.RestartPolicy = RestartPolicyNever
			return t
		}()}}, "spec.template.spec.restartPolicy"},
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

func TestDefaultDeployment(t *testing.T) {
	d := &Deployment{ObjectMeta: ObjectMeta{Name: "web"}, Spec: DeploymentSpec{Template: appsTemplate()}}
	Default(d)
	s := d.Spec
	if *s.Replicas != 1 || s.Strategy.Type != "RollingUpdate" || s.Strategy.RollingUpdate.MaxSurge.String() != "25%" ||
		s.Strategy.RollingUpdate.MaxUnavailable.String() != "25%" || *s.RevisionHistoryLimit != 10 || *s.ProgressDeadlineSeconds != 600 ||
		s.Template.Spec.RestartPolicy != RestartPolicyAlways || d.APIVersion != "apps/v1" {
		t.Fatalf("defaults: %+v", d)
	}
}

func TestSelectorImmutable(t *testing.T) {
	old := &Deployment{ObjectMeta: ObjectMeta{Name: "web", Namespace: "default"}, Spec: DeploymentSpec{Selector: &LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: appsTemplate()}}
	Default(old)
	nw := DeepCopy(old)
	nw.Spec.Selector.MatchLabels["tier"] = "x"
	nw.Spec.Template.Labels["tier"] = "x"
	err := ValidateUpdate(old, nw)
	if err == nil || !strings.Contains(err.Error(), "spec.selector") {
		t.Fatalf("selector change: %v, want spec.selector immutable", err)
	}
}

func TestScaledValue(t *testing.T) {
	for _, tc := range []struct {
		v     IntOrString
		total int32
		up    bool
		want  int32
	}{
		{FromString("25%"), 10, true, 3}, {FromString("25%"), 10, false, 2}, {FromInt(4), 10, false, 4}, {FromString("0%"), 10, true, 0},
	} {
		got, err := ScaledValue(&tc.v, tc.total, tc.up)
		if err != nil || got != tc.want {
			t.Errorf("ScaledValue(%v, %d, %v) = %d, %v; want %d", tc.v, tc.total, tc.up, got, err, tc.want)
		}
	}
}
