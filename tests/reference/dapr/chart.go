package main

// The sidecar injector's settings as a default Helm install of the release
// at SRC gives them: values.yaml of the umbrella chart and of the
// dapr_sidecar_injector subchart, turned into the Deployment's env the way
// its template does. Only env names that the release's template really sets
// are returned, so one program serves every release line.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// controlPlaneNamespace is the namespace `dapr init -k` and the docs install into.
const controlPlaneNamespace = "dapr-system"

type chartSettings struct {
	Env             []envVar // env of the sidecar-injector container, in template order
	SchedulerOn     bool     // global.scheduler.enabled (injector flag --scheduler-enabled)
	SchedulerReps   int      // replicas of dapr-scheduler-server for that setting
	MTLSEnabled     bool     // global.mtls.enabled, copied into the daprsystem Configuration
	Values          map[string]any
	TemplateEnvSeen map[string]bool
}

type envVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func readYAML(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := yaml.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

func dig(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

// helmString renders a value the way `toString` does.
func helmString(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case bool:
		if t {
			return "true"
		}
		return "false"
	default:
		// sprig's strval: a number from a values file is a float64, so 1000000 is "1e+06".
		return fmt.Sprintf("%v", t)
	}
}

// truthyHelm is a template's `if`: false for nil, false, 0, "" and empty collections.
func truthyHelm(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case bool:
		return t
	case float64:
		return t != 0
	case string:
		return t != ""
	case map[string]any:
		return len(t) > 0
	case []any:
		return len(t) > 0
	}
	return true
}

func truthy(v any) bool {
	b, ok := v.(bool)
	return ok && b
}

// mergeValues sets `over` onto `base` as Helm merges a values file over the chart's: maps key by
// key, anything else (lists included) replaced whole; a null removes the key.
func mergeValues(base, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if v == nil {
			delete(out, k)
			continue
		}
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = mergeValues(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// helmInt is Helm's `int` of a value (sprig toInt): numbers truncated, strings parsed, else 0.
func helmInt(v any) int64 {
	switch t := v.(type) {
	case float64:
		return int64(t)
	case bool:
		if t {
			return 1
		}
		return 0
	case string:
		var n int64
		if _, err := fmt.Sscan(t, &n); err == nil {
			return n
		}
	}
	return 0
}

// loadChart reads the release's chart defaults with `set` (an install's values.yaml, umbrella
// chart layout: global:, dapr_sidecar_injector:) merged over them, as `helm install --values`.
func loadChart(src, version string, set map[string]any) (*chartSettings, error) {
	chart := filepath.Join(src, "charts", "dapr")
	global, err := readYAML(filepath.Join(chart, "values.yaml"))
	if err != nil {
		return nil, err
	}
	inj, err := readYAML(filepath.Join(chart, "charts", "dapr_sidecar_injector", "values.yaml"))
	if err != nil {
		return nil, err
	}
	if set != nil {
		if g, ok := set["global"].(map[string]any); ok {
			global = mergeValues(global, map[string]any{"global": g})
			// A subchart sees the umbrella's globals as its own .Values.global.
		}
		if i, ok := set["dapr_sidecar_injector"].(map[string]any); ok {
			inj = mergeValues(inj, i)
		}
	}
	// The template's own `fail`s: Helm refuses the install.
	if inj["sidecarRunAsNonRoot"] == false && helmInt(inj["sidecarRunAsUser"]) != 0 {
		return nil, fmt.Errorf("helm install fails: sidecarRunAsUser must be 0 or value ommited when sidecarRunAsNonRoot is false")
	}
	if _, has := inj["sidecarRunAsUser"]; inj["sidecarRunAsNonRoot"] == true && has && helmInt(inj["sidecarRunAsUser"]) <= 0 {
		return nil, fmt.Errorf("helm install fails: sidecarRunAsUser must positive when sidecarRunAsNonRoot is true (or default)")
	}
	tplBytes, err := os.ReadFile(filepath.Join(chart, "charts", "dapr_sidecar_injector", "templates", "dapr_sidecar_injector_deployment.yaml"))
	if err != nil {
		return nil, err
	}
	tpl := string(tplBytes)
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`- name: ([A-Z][A-Z0-9_]+)`).FindAllStringSubmatch(tpl, -1) {
		seen[m[1]] = true
	}

	// The release pipeline rewrites the chart's 'edge' tag to the release version (no leading v).
	tag := helmString(dig(global, "global", "tag"))
	if tag == "edge" {
		tag = strings.TrimPrefix(version, "v")
	}
	image := helmString(dig(inj, "image", "name"))
	if !strings.Contains(image, "/") {
		image = helmString(dig(global, "global", "registry")) + "/" + image + ":" + tag
	}

	actorsName := helmString(dig(global, "global", "actors", "serviceName"))
	actorsAddr, err := chartAddress(chart, actorsName)
	if err != nil {
		return nil, err
	}

	s := &chartSettings{
		SchedulerOn: truthy(dig(global, "global", "scheduler", "enabled")),
		MTLSEnabled: truthy(dig(global, "global", "mtls", "enabled")),
		Values: map[string]any{
			"global":                global["global"],
			"dapr_sidecar_injector": inj,
		},
		TemplateEnvSeen: seen,
	}
	if s.SchedulerOn {
		s.SchedulerReps = 3 // dapr_scheduler.get-replicas: 3 whenever the scheduler is enabled
	}

	add := func(name, value string) {
		if seen[name] {
			s.Env = append(s.Env, envVar{Name: name, Value: value})
		}
	}
	add("DAPR_TRUST_ANCHORS_FILE", "/var/run/secrets/dapr.io/tls/ca.crt")
	add("DAPR_CONTROL_PLANE_TRUST_DOMAIN", helmString(dig(global, "global", "mtls", "controlPlaneTrustDomain")))
	sentry := helmString(dig(global, "global", "mtls", "sentryAddress"))
	if sentry == "" {
		sentry = "dapr-sentry." + controlPlaneNamespace + ".svc.cluster.local:443"
	}
	add("DAPR_SENTRY_ADDRESS", sentry)
	if d := helmString(inj["kubeClusterDomain"]); d != "" {
		add("KUBE_CLUSTER_DOMAIN", d)
	}
	add("SIDECAR_IMAGE", image)
	add("SIDECAR_IMAGE_PULL_POLICY", helmString(inj["sidecarImagePullPolicy"]))
	add("SIDECAR_RUN_AS_NON_ROOT", helmString(inj["sidecarRunAsNonRoot"]))
	if u := inj["sidecarRunAsUser"]; truthyHelm(u) && helmInt(u) > 0 {
		add("SIDECAR_RUN_AS_USER", helmString(u))
	}
	if g := inj["sidecarRunAsGroup"]; truthyHelm(g) && helmInt(g) > 0 {
		add("SIDECAR_RUN_AS_GROUP", helmString(g))
	}
	add("ENABLE_K8S_DOWNWARD_APIS", helmString(inj["enableK8sDownwardAPIs"]))
	add("SIDECAR_DROP_ALL_CAPABILITIES", helmString(inj["sidecarDropALLCapabilities"]))
	add("SIDECAR_READ_ONLY_ROOT_FILESYSTEM", helmString(inj["sidecarReadOnlyRootFilesystem"]))
	add("NATIVE_SIDECAR_ENABLED", helmString(inj["nativeSidecar"]))
	add("NAMESPACE", controlPlaneNamespace)
	if t := helmString(inj["ignoreEntrypointTolerations"]); t != "" {
		add("IGNORE_ENTRYPOINT_TOLERATIONS", t)
	}
	add("ACTORS_ENABLED", helmString(dig(global, "global", "actors", "enabled")))
	add("ACTORS_SERVICE_NAME", actorsName)
	add("ACTORS_SERVICE_ADDRESS", actorsAddr)
	if r := helmString(dig(global, "global", "reminders", "serviceName")); r != "" {
		addr, err := chartAddress(chart, r)
		if err != nil {
			return nil, err
		}
		add("REMINDERS_SERVICE_NAME", r)
		add("REMINDERS_SERVICE_ADDRESS", addr)
	}
	if truthy(dig(global, "global", "reminders", "skipMigration")) {
		add("DAPR_SKIP_REMINDER_MIGRATION", "true")
	}
	if a := helmString(inj["allowedServiceAccounts"]); a != "" {
		add("ALLOWED_SERVICE_ACCOUNTS", a)
	}
	if a := helmString(inj["allowedServiceAccountsPrefixNames"]); a != "" {
		add("ALLOWED_SERVICE_ACCOUNTS_PREFIX_NAMES", a)
	}
	return s, nil
}

// chartAddress reads the "<name>:<port>" that templates/_address_<svc>.tpl defines.
func chartAddress(chart, svc string) (string, error) {
	b, err := os.ReadFile(filepath.Join(chart, "templates", "_address_"+svc+".tpl"))
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`"([a-z0-9.-]+:[0-9]+)"`).FindStringSubmatch(string(b))
	if m == nil {
		return "", fmt.Errorf("no address in _address_%s.tpl", svc)
	}
	return m[1], nil
}
