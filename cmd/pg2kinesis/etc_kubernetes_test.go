package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
)

func TestEtcKubernetes(t *testing.T) {
	objs := k8sObjects(t, filepath.Join(etcDir, "kubernetes"))
	var d k8sDeploymentSpec
	get(t, objs, "Deployment/pg2kinesis", &d)
	pod := d.Template.Spec
	if d.Replicas != 2 || d.Strategy.Type != "Recreate" {
		t.Errorf("replicas %d, strategy %q: want 2 on the slot, one standing by, and Recreate (the standby is never ready)", d.Replicas, d.Strategy.Type)
	}
	if !contains(d.Template.Metadata.Labels, d.Selector.MatchLabels) {
		t.Fatalf("the selector %v does not select the pods %v", d.Selector.MatchLabels, d.Template.Metadata.Labels)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, have %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !strings.HasPrefix(c.Image, "ghcr.io/pg2kinesis/pg2kinesis:") {
		t.Errorf("image %s", c.Image)
	}
	if len(c.Command) > 0 && filepath.Base(c.Command[0]) != "pg2kinesis" {
		t.Errorf("command %q does not run pg2kinesis", c.Command)
	}
	if len(c.EnvFrom) > 0 {
		t.Error("envFrom is not checked here: name each variable in env")
	}

	// The container's file system: each volume written out under root,
	// where the paths of the arguments, the environment and the config
	// file are redirected (the mounts hold all the paths they name).
	root := t.TempDir()
	var mountPaths []string
	writable := map[string]bool{}
	for _, m := range c.VolumeMounts {
		i := slices.IndexFunc(pod.Volumes, func(v k8sVolume) bool {
			return v.Name == m.Name
		})
		if i < 0 {
			t.Fatalf("volume mount %s: no such volume", m.Name)
		}
		v, dir := pod.Volumes[i], filepath.Join(root, m.MountPath)
		files := map[string]string{}
		switch {
		case v.ConfigMap != nil:
			files = get(t, objs, "ConfigMap/"+v.ConfigMap.Name, nil).Data
		case v.Secret != nil:
			data := get(t, objs, "Secret/"+v.Secret.SecretName, nil).StringData
			for _, it := range v.Secret.Items {
				if _, ok := data[it.Key]; !ok {
					t.Fatalf("volume %s: the Secret has no key %s", v.Name, it.Key)
				}
				files[it.Path] = data[it.Key]
			}
		case v.EmptyDir != nil:
			writable[m.MountPath] = true
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		mountPaths = append(mountPaths, m.MountPath)
	}
	var pairs []string
	for _, p := range mountPaths {
		pairs = append(pairs, p, filepath.Join(root, p))
	}
	inPod := strings.NewReplacer(pairs...)
	for _, path := range mountPaths {
		if writable[path] {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(root, path, "*"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if err := os.WriteFile(f, []byte(inPod.Replace(string(b))), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = inPod.Replace(e.Value)
		case e.ValueFrom.SecretKeyRef != nil || e.ValueFrom.ConfigMapKeyRef != nil:
			ref, kind := e.ValueFrom.SecretKeyRef, "Secret"
			if ref == nil {
				ref, kind = e.ValueFrom.ConfigMapKeyRef, "ConfigMap"
			}
			o := get(t, objs, kind+"/"+ref.Name, nil)
			v, ok := o.StringData[ref.Key]
			if kind == "ConfigMap" {
				v, ok = o.Data[ref.Key]
			}
			if !ok && !ref.Optional {
				t.Fatalf("env %s: %s %s has no key %s", e.Name, kind, ref.Name, ref.Key)
			}
			if ok {
				env[e.Name] = v
			}
		default:
			t.Fatalf("env %s: only values and Secret or ConfigMap keys are checked", e.Name)
		}
	}
	var args []string
	for _, a := range c.Args {
		args = append(args, inPod.Replace(a))
	}
	cfg := settings(t, args, env)

	// Where the settings meet the manifest.
	host, port, err := net.SplitHostPort(cfg.MetricsAddr)
	if err != nil || (host != "" && host != "0.0.0.0" && host != "::") {
		t.Fatalf("--metrics-addr %q: the kubelet and Prometheus reach the pod's IP, not its loopback", cfg.MetricsAddr)
	}
	portName := ""
	for _, p := range c.Ports {
		if p.ContainerPort == port {
			portName = p.Name
		}
	}
	if portName == "" {
		t.Fatalf("no container port %s (--metrics-addr)", port)
	}
	for _, p := range []struct {
		name  string
		probe *k8sProbe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || (p.probe.HTTPGet.Port != port && p.probe.HTTPGet.Port != portName) {
			t.Errorf("%s probe: want GET %s on port %s (%s)", p.name, p.path, port, portName)
		}
	}
	// The note on the standby holds: the standby is not ready, and
	// liveness must not use /readyz.
	if err := metrics.Ready(metrics.State{Streaming: false}, time.Now(), time.Minute); err == nil || !strings.Contains(err.Error(), "standing by") {
		t.Errorf("a run that is not streaming (the standby) is ready, or says otherwise: %v; update the notes of deployment.yaml", err)
	}
	ann := d.Template.Metadata.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != port || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("prometheus.io annotations %v: want port %s, path /metrics", ann, port)
	}
	if !cfg.PG.IAMAuth && !strings.HasPrefix(cfg.PG.PasswordFile, root) {
		t.Errorf("--pg-password-file %s is not in a mounted Secret", cfg.PG.PasswordFile)
	}
	spoolOK := false
	for p := range writable {
		spoolOK = spoolOK || strings.HasPrefix(cfg.SpoolDir+"/", filepath.Join(root, p)+"/")
	}
	if !spoolOK {
		t.Errorf("--spool-dir %q is not on a writable volume (the root file system is read-only)", cfg.SpoolDir)
	}
	if time.Duration(pod.TerminationGracePeriodSeconds)*time.Second <= cfg.ShutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %d should exceed --shutdown-timeout %s", pod.TerminationGracePeriodSeconds, cfg.ShutdownTimeout)
	}

	// Security and resources.
	sc := c.SecurityContext
	if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("securityContext: want runAsNonRoot, readOnlyRootFilesystem, no privilege escalation, all capabilities dropped")
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}

	// The metrics Service selects the pods, keeps the standby, and is what
	// the ServiceMonitor scrapes.
	var svc k8sServiceSpec
	svcObj := get(t, objs, "Service/pg2kinesis-metrics", &svc)
	if !contains(d.Template.Metadata.Labels, svc.Selector) || !svc.PublishNotReadyAddresses {
		t.Errorf("Service: selector %v should select the pods, publishNotReadyAddresses should be true", svc.Selector)
	}
	if len(svc.Ports) != 1 || (svc.Ports[0].TargetPort != port && svc.Ports[0].TargetPort != portName) {
		t.Fatalf("Service ports %+v: want one, to the metrics port", svc.Ports)
	}
	var sm k8sServiceMonitorSpec
	get(t, objs, "ServiceMonitor/pg2kinesis", &sm)
	if !contains(svcObj.Metadata.Labels, sm.Selector.MatchLabels) || len(sm.Endpoints) != 1 ||
		sm.Endpoints[0].Port != svc.Ports[0].Name || sm.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor %+v does not scrape /metrics of the Service's port %s", sm, svc.Ports[0].Name)
	}
}

// The README behaviour that deployment.yaml quotes is still the README's.
func TestEtcKubernetesQuotesReadme(t *testing.T) {
	dep, err := os.ReadFile(filepath.Join(etcDir, "kubernetes/deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	comment := regexp.MustCompile(`(?m)^# ?`)
	space := regexp.MustCompile(`\s+`)
	text := space.ReplaceAllString(comment.ReplaceAllString(string(dep), ""), " ")
	quote := regexp.MustCompile(`From the README: "([^"]+)"`).FindStringSubmatch(text)
	if quote == nil {
		t.Fatal(`deployment.yaml lacks its quote of the README (From the README: "...")`)
	}
	if !strings.Contains(space.ReplaceAllString(string(readme), " "), quote[1]) {
		t.Errorf("README.md no longer says %q", quote[1])
	}
}

// kustomize's own reading of the directory, where kubectl is installed.
func TestEtcKubernetesKustomize(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("no kubectl")
	}
	out, err := exec.Command(kubectl, "kustomize", filepath.Join(etcDir, "kubernetes")).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	for _, kind := range []string{"ConfigMap", "Secret", "ServiceAccount", "Deployment", "Service", "ServiceMonitor"} {
		if !strings.Contains(string(out), "\nkind: "+kind+"\n") {
			t.Errorf("kubectl kustomize gave no %s", kind)
		}
	}
}
