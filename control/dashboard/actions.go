package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
)

// The kinds each action takes (the dashboard's buttons offer no others).
var (
	deletable   = []string{"Pod", "Deployment", "ReplicaSet", "DaemonSet", "Job", "CronJob", "Service"}
	scalable    = []string{"Deployment", "ReplicaSet"}
	restartable = []string{"Deployment", "DaemonSet"}
)

// target is the object an action names: form fields kind, namespace, name.
type target struct {
	kind      *api.Kind
	namespace string
	name      string
}

// parseTarget checks an action's object fields; a bad one is a 400 (or
// 422 for a kind the action does not take) naming the field.
func parseTarget(r *http.Request, kinds []string) (target, error) {
	f := r.PostForm
	kindName, ns, name := f.Get("kind"), f.Get("namespace"), f.Get("name")
	ok := false
	for _, k := range kinds {
		if k == kindName {
			ok = true
		}
	}
	if !ok {
		return target{}, &api.Status{Code: 422, Reason: api.ReasonInvalid,
			Message: fmt.Sprintf("kind: %q: this action takes %s", truncate(kindName, 64), strings.Join(kinds, ", "))}
	}
	k, err := api.LookupKind(kindName)
	if err != nil {
		return target{}, badParam("kind", "%v", err)
	}
	if errs := api.ValidateName(namespaceKind, ns); len(errs) > 0 {
		return target{}, badParam("namespace", "%s", strings.Join(errs, "; "))
	}
	if errs := api.ValidateName(k, name); len(errs) > 0 {
		return target{}, badParam("name", "%s", strings.Join(errs, "; "))
	}
	return target{kind: k, namespace: ns, name: name}, nil
}

// done answers an action: JSON for the page's script (Accept:
// application/json), else a redirect back to the page it came from. An
// error is its api.Status.
func done(w http.ResponseWriter, r *http.Request, msg string, err error) {
	wantJSON := strings.Contains(r.Header.Get("Accept"), "application/json")
	if err != nil {
		var st *api.Status
		if !errors.As(err, &st) {
			st = &api.Status{Code: 500, Reason: api.ReasonInternal, Message: err.Error()}
		}
		if wantJSON {
			writeJSON(w, st.Code, st)
			return
		}
		writeStatus(w, st)
		return
	}
	if wantJSON {
		writeJSON(w, http.StatusOK, map[string]string{"message": msg})
		return
	}
	back := r.PostForm.Get("back")
	if !safeNext(back) {
		back = "/"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) actionCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
}

// actionDelete deletes an object with the user's identity (RBAC decides;
// a 403 comes back as it is).
func (s *Server) actionDelete(w http.ResponseWriter, r *http.Request, sess *session) {
	t, err := parseTarget(r, deletable)
	if err != nil {
		done(w, r, "", err)
		return
	}
	ctx, cancel := s.actionCtx(r)
	defer cancel()
	_, err = sess.c.Delete(ctx, api.DeleteRequest{Kind: t.kind.Name, Namespace: t.namespace, Name: t.name})
	s.audit(sess, "delete", t, err)
	done(w, r, fmt.Sprintf("%s %s/%s deleted", strings.ToLower(t.kind.Name), t.namespace, t.name), err)
}

// maxReplicas bounds what the dashboard sets (kubectl takes any int32; a
// typo of a few extra digits should not start a million pods).
const maxReplicas = 10000

// actionScale sets a Deployment's or ReplicaSet's replicas.
func (s *Server) actionScale(w http.ResponseWriter, r *http.Request, sess *session) {
	t, err := parseTarget(r, scalable)
	if err != nil {
		done(w, r, "", err)
		return
	}
	n, perr := strconv.ParseInt(strings.TrimSpace(r.PostForm.Get("replicas")), 10, 32)
	if perr != nil || n < 0 || n > maxReplicas {
		done(w, r, "", badParam("replicas", "%q: want a whole number from 0 to %d", truncate(r.PostForm.Get("replicas"), 32), maxReplicas))
		return
	}
	replicas := int32(n)
	ctx, cancel := s.actionCtx(r)
	defer cancel()
	_, err = sess.c.Update(ctx, t.kind.Name, t.namespace, t.name, func(obj api.Object) error {
		var cur **int32
		switch o := obj.(type) {
		case *api.Deployment:
			cur = &o.Spec.Replicas
		case *api.ReplicaSet:
			cur = &o.Spec.Replicas
		default:
			return fmt.Errorf("scale: unexpected %T", obj)
		}
		if *cur != nil && **cur == replicas {
			return client.ErrUnchanged
		}
		*cur = &replicas
		return nil
	})
	s.audit(sess, "scale", t, err)
	done(w, r, fmt.Sprintf("%s %s/%s scaled to %d", strings.ToLower(t.kind.Name), t.namespace, t.name, replicas), err)
}

// actionRestart restarts a Deployment's or DaemonSet's pods through a
// rollout, as `kyb rollout restart` does: a new restartedAt annotation on
// the pod template.
func (s *Server) actionRestart(w http.ResponseWriter, r *http.Request, sess *session) {
	t, err := parseTarget(r, restartable)
	if err != nil {
		done(w, r, "", err)
		return
	}
	ctx, cancel := s.actionCtx(r)
	defer cancel()
	_, err = sess.c.Update(ctx, t.kind.Name, t.namespace, t.name, func(obj api.Object) error {
		var tmpl *api.PodTemplateSpec
		switch o := obj.(type) {
		case *api.Deployment:
			if o.Spec.Paused {
				return api.NewBadRequest("can't restart a paused deployment (resume it first)")
			}
			tmpl = &o.Spec.Template
		case *api.DaemonSet:
			tmpl = &o.Spec.Template
		default:
			return fmt.Errorf("restart: unexpected %T", obj)
		}
		if tmpl.Annotations == nil {
			tmpl.Annotations = map[string]string{}
		}
		tmpl.Annotations[api.AnnotationRestartedAt] = time.Now().UTC().Format(time.RFC3339Nano)
		return nil
	})
	s.audit(sess, "restart", t, err)
	done(w, r, fmt.Sprintf("%s %s/%s restarted", strings.ToLower(t.kind.Name), t.namespace, t.name), err)
}

func (s *Server) audit(sess *session, action string, t target, err error) {
	s.log.Info("dashboard action", "user", sess.user, "action", action, "kind", t.kind.Name, "namespace", t.namespace, "name", t.name, "err", err)
}
