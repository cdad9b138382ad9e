package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

var (
	podKindCLI     = api.KindOf(&api.Pod{})
	serviceKindCLI = api.KindOf(&api.Service{})
)

// exposeFlags are kubectl expose's flags that kyb honours.
type exposeFlags struct {
	ns, name, typ, targetPort, protocol string
	port                                int32
}

func newExposeCmd(g *globals) *cobra.Command {
	var f exposeFlags
	cmd := &cobra.Command{
		Use:   "expose (TYPE/NAME | TYPE NAME) [--port=PORT] [--target-port=PORT|NAME] [--type=ClusterIP|NodePort|LoadBalancer] [--name=NAME]",
		Short: "Make a Service for a pod, deployment, replicaset or service: its selector from the object's, its port from --port or the first container port",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := workloadRef("expose", args, podKindCLI, deploymentKind, replicaSetKind, serviceKindCLI)
			if err != nil {
				return err
			}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				obj, err := c.Get(ctx, r.kind.Name, orDefault("", f.ns, r.kind), r.name)
				if err != nil {
					return err
				}
				svc, err := exposeService(obj, f)
				if err != nil {
					return fmt.Errorf("expose %s: %w", refName(r), err)
				}
				b, err := json.Marshal(svc)
				if err != nil {
					return err
				}
				if _, err := c.Apply(ctx, b); err != nil {
					return err
				}
				fmt.Fprintf(g.streams.Out, "service/%s exposed\n", svc.Name)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&f.ns, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().StringVar(&f.name, "name", "", "the Service's name (default: the object's)")
	cmd.Flags().Int32Var(&f.port, "port", 0, "the port the Service serves (default: the first container port)")
	cmd.Flags().StringVar(&f.targetPort, "target-port", "", "the pods' port, a number or a container port's name (default: --port)")
	cmd.Flags().StringVar(&f.typ, "type", "", "ClusterIP (default), NodePort or LoadBalancer")
	cmd.Flags().StringVar(&f.protocol, "protocol", "", "TCP (default) or UDP")
	return cmd
}

// exposeService builds the Service kubectl expose would make for obj.
func exposeService(obj api.Object, f exposeFlags) (*api.Service, error) {
	m := obj.GetObjectMeta()
	var selector map[string]string
	var spec *api.PodSpec
	var svcPorts []api.ServicePort
	switch o := obj.(type) {
	case *api.Pod:
		selector, spec = o.Labels, &o.Spec
	case *api.Deployment:
		sel, err := matchLabelsOnly(o.Spec.Selector)
		if err != nil {
			return nil, err
		}
		selector, spec = sel, &o.Spec.Template.Spec
	case *api.ReplicaSet:
		sel, err := matchLabelsOnly(o.Spec.Selector)
		if err != nil {
			return nil, err
		}
		selector, spec = sel, &o.Spec.Template.Spec
	case *api.Service:
		selector, svcPorts = o.Spec.Selector, o.Spec.Ports
	}
	if len(selector) == 0 {
		return nil, fmt.Errorf("%s %s has no labels to select its pods by", api.KindOf(obj).Name, m.Name)
	}
	port := api.ServicePort{Port: f.port, Protocol: f.protocol}
	switch {
	case f.port != 0:
	case spec != nil:
		for _, c := range spec.Containers {
			if len(c.Ports) > 0 {
				port.Port = c.Ports[0].ContainerPort
				if port.Protocol == "" {
					port.Protocol = string(c.Ports[0].Protocol)
				}
				break
			}
		}
	case len(svcPorts) > 0:
		port.Port = svcPorts[0].Port
		port.TargetPort = svcPorts[0].TargetPort
	}
	if port.Port == 0 {
		return nil, fmt.Errorf("no port: give --port (the object declares no container port)")
	}
	if f.targetPort != "" {
		if n, err := strconv.Atoi(f.targetPort); err == nil {
			port.TargetPort = api.FromInt(int32(n))
		} else {
			port.TargetPort = api.FromString(f.targetPort)
		}
	}
	name := f.name
	if name == "" {
		name = m.Name
	}
	svc := &api.Service{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: m.Namespace, Labels: maps.Clone(m.Labels)},
		Spec:       api.ServiceSpec{Type: api.ServiceType(f.typ), Selector: maps.Clone(selector), Ports: []api.ServicePort{port}},
	}
	api.Default(svc)
	if err := api.Validate(svc); err != nil {
		return nil, err
	}
	return svc, nil
}

// matchLabelsOnly returns a selector's matchLabels; expressions cannot be
// a Service's selector.
func matchLabelsOnly(s *api.LabelSelector) (map[string]string, error) {
	if s == nil {
		return nil, nil
	}
	if len(s.MatchExpressions) > 0 {
		return nil, fmt.Errorf("its selector has matchExpressions, which a Service cannot select by")
	}
	return s.MatchLabels, nil
}
