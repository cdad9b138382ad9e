package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
)

// createFlags are the flags every `kyb create` form shares.
type createFlags struct {
	ns      string
	dryRun  string
	output  string
	literal []string
	files   []string
}

func (f *createFlags) register(cmd *cobra.Command, sources bool) {
	cmd.Flags().StringVarP(&f.ns, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().StringVar(&f.dryRun, "dry-run", "none", "none (create it), or client (print it, with -o yaml|json, and create nothing)")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "with --dry-run=client: yaml or json")
	if sources {
		cmd.Flags().StringArrayVar(&f.literal, "from-literal", nil, "KEY=VALUE (repeatable)")
		cmd.Flags().StringArrayVar(&f.files, "from-file", nil, "[KEY=]PATH: a file (its name is the key unless KEY= is given) or a directory (each regular file in it) (repeatable)")
	}
}

func newCreateCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "create", Short: "Create a Secret or a ConfigMap from literals and files (values are never printed)"}
	secret := &cobra.Command{Use: "secret", Short: "Create a Secret: generic or docker-registry"}
	var gf createFlags
	var secretType string
	generic := &cobra.Command{
		Use:   "generic NAME [--from-literal KEY=VALUE] [--from-file [KEY=]PATH] [--type TYPE]",
		Short: "Create a Secret from literals and files",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := collectSources(gf.literal, gf.files)
			if err != nil {
				return fmt.Errorf("create secret: %w", err)
			}
			s := &api.Secret{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: api.ObjectMeta{Name: args[0], Namespace: gf.ns},
				Type: api.SecretType(secretType), Data: data}
			return createObject(cmd, g, &gf, s)
		},
	}
	gf.register(generic, true)
	generic.Flags().StringVar(&secretType, "type", "", "the Secret's type (default Opaque)")

	var df createFlags
	var server, user, password, email string
	docker := &cobra.Command{
		Use:   "docker-registry NAME --docker-server SERVER --docker-username USER --docker-password PASSWORD [--docker-email EMAIL]",
		Short: "Create a kubernetes.io/dockerconfigjson Secret, for a pod's imagePullSecrets",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if user == "" || password == "" {
				return fmt.Errorf("create secret docker-registry: --docker-username and --docker-password are required")
			}
			cfg, err := dockerConfigJSON(server, user, password, email)
			if err != nil {
				return err
			}
			s := &api.Secret{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: api.ObjectMeta{Name: args[0], Namespace: df.ns},
				Type: api.SecretTypeDockerConfigJSON, Data: map[string][]byte{api.DockerConfigJSONKey: cfg}}
			return createObject(cmd, g, &df, s)
		},
	}
	df.register(docker, false)
	docker.Flags().StringVar(&server, "docker-server", "https://index.docker.io/v1/", "the registry's address")
	docker.Flags().StringVar(&user, "docker-username", "", "user name for the registry")
	docker.Flags().StringVar(&password, "docker-password", "", "password for the registry")
	docker.Flags().StringVar(&email, "docker-email", "", "email for the registry (optional)")
	secret.AddCommand(generic, docker)

	var cf createFlags
	configmap := &cobra.Command{
		Use:     "configmap NAME [--from-literal KEY=VALUE] [--from-file [KEY=]PATH]",
		Aliases: []string{"cm"},
		Short:   "Create a ConfigMap from literals and files (UTF-8 values go in data, others in binaryData)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := collectSources(cf.literal, cf.files)
			if err != nil {
				return fmt.Errorf("create configmap: %w", err)
			}
			cm := &api.ConfigMap{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: api.ObjectMeta{Name: args[0], Namespace: cf.ns}}
			for k, v := range data {
				if utf8.Valid(v) {
					if cm.Data == nil {
						cm.Data = map[string]string{}
					}
					cm.Data[k] = string(v)
				} else {
					if cm.BinaryData == nil {
						cm.BinaryData = map[string][]byte{}
					}
					cm.BinaryData[k] = v
				}
			}
			return createObject(cmd, g, &cf, cm)
		},
	}
	cf.register(configmap, true)
	cmd.AddCommand(secret, configmap)
	return cmd
}

// collectSources reads --from-literal and --from-file into keys and
// values; a key given twice is an error, as kubectl's.
func collectSources(literals, files []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	add := func(k string, v []byte, from string) error {
		if msgs := validation.IsConfigMapKey(k); len(msgs) > 0 {
			return fmt.Errorf("%s: key %q: %s", from, k, strings.Join(msgs, "; "))
		}
		if _, dup := out[k]; dup {
			return fmt.Errorf("%s: key %q given twice", from, k)
		}
		out[k] = v
		return nil
	}
	for _, l := range literals {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--from-literal %q: want KEY=VALUE", l)
		}
		if err := add(k, []byte(v), "--from-literal"); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		key, path, named := strings.Cut(f, "=")
		if !named {
			key, path = "", f
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("--from-file %s: %w", f, err)
		}
		if fi.IsDir() {
			if named {
				return nil, fmt.Errorf("--from-file %s: a directory takes no KEY= (each file's name is its key)", f)
			}
			entries, err := os.ReadDir(path)
			if err != nil {
				return nil, fmt.Errorf("--from-file %s: %w", f, err)
			}
			for _, e := range entries {
				if !e.Type().IsRegular() {
					continue
				}
				b, err := os.ReadFile(filepath.Join(path, e.Name()))
				if err != nil {
					return nil, fmt.Errorf("--from-file %s: %w", f, err)
				}
				if err := add(e.Name(), b, "--from-file "+f); err != nil {
					return nil, err
				}
			}
			continue
		}
		if key == "" {
			key = filepath.Base(path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--from-file %s: %w", f, err)
		}
		if err := add(key, b, "--from-file "+f); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// dockerConfigJSON is the .dockerconfigjson of one registry login, as
// kubectl writes it.
func dockerConfigJSON(server, user, password, email string) ([]byte, error) {
	type entry struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Email    string `json:"email,omitempty"`
		Auth     string `json:"auth"`
	}
	return json.Marshal(map[string]map[string]entry{"auths": {server: {
		Username: user, Password: password, Email: email,
		Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
	}}})
}

// createObject creates obj (refusing one that exists, as kubectl create
// does) and prints `<kind>/<name> created`; with --dry-run=client it
// prints obj as -o says and sends nothing.
func createObject(cmd *cobra.Command, g *globals, f *createFlags, obj api.Object) error {
	kind := api.KindOf(obj)
	m := obj.GetObjectMeta()
	m.Namespace = orDefault("", f.ns, kind)
	// The apiserver's checks, here first: an object over 1 MiB would
	// otherwise meet the request limit (413), which cannot name it.
	check := api.DeepCopy(obj)
	api.Default(check)
	if err := api.Validate(check); err != nil {
		return err
	}
	switch f.dryRun {
	case "client":
		format := f.output
		if format == "" {
			format = "yaml"
		}
		if format != "yaml" && format != "json" {
			return fmt.Errorf("create: -o %q: want yaml or json", f.output)
		}
		p, err := newPrinter(g.streams.Out, format, false)
		if err != nil {
			return err
		}
		return p.printObject(kind, obj)
	case "none", "":
	default:
		return fmt.Errorf("create: --dry-run %q: want none or client", f.dryRun)
	}
	if f.output != "" {
		return fmt.Errorf("create: -o goes with --dry-run=client (the created object is not printed: it holds the values)")
	}
	c, nc, err := g.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := g.reqCtx(cmd.Context())
	defer cancel()
	if _, err := c.Get(ctx, kind.Name, m.Namespace, m.Name); err == nil {
		return api.NewAlreadyExists(kind.Name, m.Name)
	} else if !api.IsNotFound(err) {
		return err
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	if _, err := c.Apply(ctx, body); err != nil {
		return fmt.Errorf("create %s %s: %w", strings.ToLower(kind.Name), m.Name, err)
	}
	fmt.Fprintf(g.streams.Out, "%s/%s created\n", strings.ToLower(kind.Name), m.Name)
	return nil
}
