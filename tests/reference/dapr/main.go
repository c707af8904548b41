// Command dapr-reference renders the goldens of Dapr's own sidecar injector:
// every input document goes through the injection path of the Dapr release
// it is built against, and the objects are written back as the injector
// leaves them.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/dapr/dapr/pkg/injector/service"
	"github.com/dapr/dapr/pkg/security"
)

func main() {
	src := flag.String("src", "", "checkout of github.com/dapr/dapr at the release tag")
	version := flag.String("version", "", "release tag, e.g. v1.18.3")
	anchors := flag.String("trust-anchors", "", "PEM file used as the current trust anchors")
	corpus := flag.String("corpus", "", "directory of corpus *.yaml (skipped when missing)")
	cases := flag.String("cases", "", "directory of case *.yaml")
	out := flag.String("out", "", "golden directory for this version (rewritten)")
	installs := flag.String("install", "", "directory of install folders <name>/values.yaml + inputs (skipped when missing)")
	flag.Parse()
	if *src == "" || *version == "" || *anchors == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if !strings.HasPrefix(*version, releaseLine+".") {
		log.Fatalf("version %s does not belong to the %s line this binary was built for", *version, releaseLine)
	}

	in, env, err := setup(*src, *version, *anchors, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.RemoveAll(*out); err != nil {
		log.Fatal(err)
	}
	counts := map[string]int{}
	for _, job := range []struct {
		dir, name string
		enable    bool
	}{
		{*corpus, "corpus", false},
		{*corpus, "corpus-enabled", true},
		{*cases, "cases", false},
	} {
		if job.dir == "" {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(job.dir, "*.yaml"))
		sort.Strings(files)
		for _, f := range files {
			stem := strings.TrimSuffix(filepath.Base(f), ".yaml")
			docs, reasons, err := in.renderFile(f, job.enable)
			if err != nil {
				log.Fatalf("%s: %v", f, err)
			}
			if err := writeDocs(filepath.Join(*out, job.name, stem+".yaml"), docs); err != nil {
				log.Fatal(err)
			}
			if len(reasons) > 0 {
				if err := writeReasons(filepath.Join(*out, job.name, stem+".reasons.yaml"), reasons); err != nil {
					log.Fatal(err)
				}
			}
			counts[job.name]++
		}
	}
	installMeta, err := renderInstalls(*installs, *src, *version, *anchors, filepath.Join(*out, "install"), counts)
	if err != nil {
		log.Fatal(err)
	}
	if err := writeMeta(filepath.Join(*out, "meta.yaml"), in, env, *version, *anchors, counts, installMeta); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "dapr %s: %v files rendered into %s\n", *version, counts, *out)
}

// renderInstalls renders each install folder <dir>/<name>/: its values.yaml set over the chart
// defaults, its other *.yaml files rendered by that install into <out>/<name>/. It returns
// meta.yaml's install.<name> entries: the values set, the injector env and settings, or the
// error Helm gives for those values (then nothing is rendered).
func renderInstalls(dir, src, version, anchors, out string, counts map[string]int) (map[string]any, error) {
	if dir == "" {
		return nil, nil
	}
	valueFiles, _ := filepath.Glob(filepath.Join(dir, "*", "values.yaml"))
	sort.Strings(valueFiles)
	meta := map[string]any{}
	for _, vf := range valueFiles {
		folder := filepath.Dir(vf)
		name := filepath.Base(folder)
		set, err := readYAML(vf)
		if err != nil {
			return nil, err
		}
		in, env, err := setup(src, version, anchors, set)
		if err != nil {
			meta[name] = map[string]any{"values": set, "install_error": err.Error()}
			continue
		}
		files, _ := filepath.Glob(filepath.Join(folder, "*.yaml"))
		sort.Strings(files)
		for _, f := range files {
			if f == vf {
				continue
			}
			stem := strings.TrimSuffix(filepath.Base(f), ".yaml")
			docs, reasons, err := in.renderFile(f, false)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", f, err)
			}
			if err := writeDocs(filepath.Join(out, name, stem+".yaml"), docs); err != nil {
				return nil, err
			}
			if len(reasons) > 0 {
				if err := writeReasons(filepath.Join(out, name, stem+".reasons.yaml"), reasons); err != nil {
					return nil, err
				}
			}
			counts["install/"+name]++
		}
		meta[name] = map[string]any{"values": set, "injector_env": env, "injector": injectorMeta(in)}
	}
	return meta, nil
}

func setup(src, version, anchorsPath string, set map[string]any) (*injector, []envVar, error) {
	chart, err := loadChart(src, version, set)
	if err != nil {
		return nil, nil, err
	}
	// The injector reads its settings from env; give it exactly the chart's.
	os.Clearenv()
	for _, e := range chart.Env {
		os.Setenv(e.Name, e.Value)
	}
	cfg, err := service.GetConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("dapr injector config: %w", err)
	}
	pem, err := os.ReadFile(anchorsPath)
	if err != nil {
		return nil, nil, err
	}
	td, err := spiffeid.TrustDomainFromString(cfg.ControlPlaneTrustDomain)
	if err != nil {
		return nil, nil, err
	}
	sentry, err := security.SentryID(td, cfg.Namespace)
	if err != nil {
		return nil, nil, err
	}
	return &injector{
		cfg:          cfg,
		chart:        chart,
		ctrlNS:       cfg.Namespace,
		trustDomain:  cfg.ControlPlaneTrustDomain,
		sentryID:     sentry.String(),
		trustAnchors: pem,
		mtls:         chart.MTLSEnabled,
	}, chart.Env, nil
}

// readDocs splits a multi-document YAML file; empty documents are dropped.
func readDocs(path string) ([]map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var docs []map[string]any
	for {
		b, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			return nil, err
		}
		var obj map[string]any
		if err := json.Unmarshal(j, &obj); err != nil {
			return nil, err
		}
		if obj == nil {
			continue
		}
		docs = append(docs, obj)
	}
}

func writeDocs(path string, docs []map[string]any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var buf bytes.Buffer
	for i, d := range docs {
		j, err := json.Marshal(d)
		if err != nil {
			return err
		}
		y, err := yaml.JSONToYAML(j)
		if err != nil {
			return err
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(y)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// writeReasons writes document index -> reason, with integer keys in document order.
func writeReasons(path string, reasons map[int]string) error {
	idx := make([]int, 0, len(reasons))
	for i := range reasons {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var buf bytes.Buffer
	for _, i := range idx {
		v, err := yaml.Marshal(reasons[i])
		if err != nil {
			return err
		}
		fmt.Fprintf(&buf, "%d: %s", i, v)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// templatePath says where a kind keeps the pod it creates.
func templatePath(kind string) ([]string, bool) {
	switch kind {
	case "Pod":
		return nil, true
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job":
		return []string{"spec", "template"}, true
	case "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template"}, true
	}
	return nil, false
}

func (in *injector) renderFile(path string, enable bool) ([]map[string]any, map[int]string, error) {
	docs, err := readDocs(path)
	if err != nil {
		return nil, nil, err
	}
	reasons := map[int]string{}
	for i, d := range docs {
		if enable {
			enableDapr(d)
		}
		why, err := in.renderObject(d)
		if err != nil {
			return nil, nil, fmt.Errorf("document %d: %w", i, err)
		}
		if why != "" {
			reasons[i] = why
		}
	}
	return docs, reasons, nil
}

func child(m map[string]any, keys []string, create bool) map[string]any {
	cur := m
	for _, k := range keys {
		next, ok := cur[k].(map[string]any)
		if !ok {
			if !create {
				return nil
			}
			next = map[string]any{}
			cur[k] = next
		}
		cur = next
	}
	return cur
}

// enableDapr is the corpus-enabled rule: the pod (template) gets
// dapr.io/enabled "true" and dapr.io/app-id <object name>, each only if
// absent; an object with only a generateName uses it without its trailing "-".
func enableDapr(obj map[string]any) {
	kind, _ := obj["kind"].(string)
	if strings.HasSuffix(kind, "List") {
		items, _ := obj["items"].([]any)
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				enableDapr(m)
			}
		}
		return
	}
	p, ok := templatePath(kind)
	if !ok {
		return
	}
	meta := child(obj, []string{"metadata"}, true)
	name, _ := meta["name"].(string)
	if name == "" {
		gen, _ := meta["generateName"].(string)
		name = strings.TrimSuffix(gen, "-")
	}
	tpl := child(obj, p, false)
	if tpl == nil {
		return
	}
	ann := child(tpl, []string{"metadata", "annotations"}, true)
	if _, ok := ann["dapr.io/enabled"]; !ok {
		ann["dapr.io/enabled"] = "true"
	}
	if _, ok := ann["dapr.io/app-id"]; !ok {
		ann["dapr.io/app-id"] = name
	}
}

// renderObject injects the object in place; it returns the reason when the
// injector skipped or refused it.
func (in *injector) renderObject(obj map[string]any) (string, error) {
	kind, _ := obj["kind"].(string)
	if strings.HasSuffix(kind, "List") {
		items, _ := obj["items"].([]any)
		var whys []string
		for j, it := range items {
			if m, ok := it.(map[string]any); ok {
				why, err := in.renderObject(m)
				if err != nil {
					return "", err
				}
				if why != "" {
					whys = append(whys, fmt.Sprintf("items[%d]: %s", j, why))
				}
			}
		}
		return strings.Join(whys, "\n"), nil
	}
	p, ok := templatePath(kind)
	if !ok {
		return "", nil
	}
	ns, _ := child(obj, []string{"metadata"}, true)["namespace"].(string)
	if ns == "" {
		ns = "default"
	}
	var tpl map[string]any
	if p == nil {
		tpl = obj
	} else if tpl = child(obj, p, false); tpl == nil {
		return "", nil
	}
	hadMeta := tpl["metadata"] != nil
	pod := map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   child(tpl, []string{"metadata"}, true),
		"spec":       tpl["spec"],
	}
	if pod["spec"] == nil {
		pod["spec"] = map[string]any{}
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		return "", err
	}
	res := in.review(raw, ns)
	if res.patch == nil {
		if !hadMeta {
			delete(tpl, "metadata")
		}
		if res.refused != "" {
			return res.refused, nil
		}
		return res.skipped, nil
	}
	patched, err := applyPatch(raw, res.patch)
	if err != nil {
		return "", err
	}
	tpl["metadata"] = patched["metadata"]
	tpl["spec"] = patched["spec"]
	return "", nil
}

func applyPatch(raw []byte, patch jsonpatch.Patch) (map[string]any, error) {
	b, err := patch.Apply(raw)
	if err != nil {
		return nil, fmt.Errorf("applying Dapr's patch: %w", err)
	}
	out := map[string]any{}
	return out, json.Unmarshal(b, &out)
}

// injectorMeta is the injector's settings as Dapr parsed them.
func injectorMeta(in *injector) map[string]any {
	return map[string]any{
		"sidecar_image":                 in.cfg.SidecarImage,
		"sidecar_image_pull_policy":     string(in.cfg.GetPullPolicy()),
		"control_plane_namespace":       in.ctrlNS,
		"kube_cluster_domain":           in.cfg.KubeClusterDomain,
		"control_plane_trust_domain":    in.trustDomain,
		"operator_address":              "dapr-api." + in.ctrlNS + ".svc." + in.cfg.KubeClusterDomain + ":443",
		"sentry_address":                "dapr-sentry." + in.ctrlNS + ".svc." + in.cfg.KubeClusterDomain + ":443",
		"sentry_spiffe_id":              in.sentryID,
		"mtls_enabled":                  in.mtls,
		"actors_enabled":                in.cfg.GetActorsEnabled(),
		"run_as_non_root":               in.cfg.GetRunAsNonRoot(),
		"read_only_root_filesystem":     in.cfg.GetReadOnlyRootFilesystem(),
		"drop_all_capabilities":         in.cfg.GetDropCapabilities(),
		"enable_k8s_downward_apis":      in.cfg.GetEnableK8sDownwardAPIs(),
		"ignore_entrypoint_tolerations": in.cfg.GetIgnoreEntrypointTolerations(),
		"release_specific":              releaseMeta(in),
	}
}

func writeMeta(path string, in *injector, env []envVar, version, anchorsPath string, counts map[string]int, installs map[string]any) error {
	mods := map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch {
			case d.Path == "github.com/dapr/dapr":
				mods[d.Path] = version + " (replace => SRC checkout of the tag)"
			case strings.HasPrefix(d.Path, "github.com/dapr/"),
				strings.HasPrefix(d.Path, "k8s.io/"),
				strings.HasPrefix(d.Path, "sigs.k8s.io/"),
				strings.HasPrefix(d.Path, "github.com/evanphx/"),
				strings.HasPrefix(d.Path, "github.com/spiffe/"):
				v := d.Version
				if d.Replace != nil {
					v = d.Replace.Path + " " + d.Replace.Version
				}
				mods[d.Path] = v
			}
		}
	}
	rel, _ := filepath.Rel(filepath.Join(filepath.Dir(path), "..", ".."), anchorsPath)
	meta := map[string]any{
		"mesh":           "dapr",
		"release_tag":    version,
		"release_line":   releaseLine,
		"go_version":     runtime.Version(),
		"go_modules":     mods,
		"files_rendered": counts,
		"helm_chart_values": map[string]any{
			"source":                "charts/dapr/values.yaml and charts/dapr/charts/dapr_sidecar_injector/values.yaml at the tag, unmodified except global.tag 'edge' -> release version (as the release pipeline does)",
			"global.registry":       dig(in.chart.Values["global"].(map[string]any), "registry"),
			"global.tag":            strings.TrimPrefix(version, "v"),
			"global.mtls":           dig(in.chart.Values["global"].(map[string]any), "mtls"),
			"global.actors":         dig(in.chart.Values["global"].(map[string]any), "actors"),
			"global.reminders":      dig(in.chart.Values["global"].(map[string]any), "reminders"),
			"global.scheduler":      dig(in.chart.Values["global"].(map[string]any), "scheduler"),
			"dapr_sidecar_injector": in.chart.Values["dapr_sidecar_injector"],
		},
		"injector_env": env,
		"injector":     injectorMeta(in),
		"driver_fixed_values": map[string]any{
			"trust_anchors_file":           rel,
			"trust_anchors_pem":            string(in.trustAnchors),
			"mtls_source":                  "a daprsystem Configuration in dapr-system with spec.mtls.enabled = global.mtls.enabled (the dapr_config subchart creates it)",
			"token_volume":                 "DisableTokenVolume=false: the injector pod has a Kubernetes token mounted, so daprd gets the dapr-identity-token projected volume",
			"components":                   "no Component objects in any namespace (pluggable components: nothing to inject)",
			"component_sockets_folder_env": "DAPR_COMPONENT_SOCKETS_FOLDER unset in the injector (default folder /tmp/dapr-components-sockets)",
			"request_namespace":            "the object's metadata.namespace, else default",
			"request_user":                 "not modelled: every request counts as authorized (a controller service account or system:masters)",
			"pod_name":                     "workload pod templates are injected as they are (no name, like a controller-created pod at admission time); bare Pods keep their name",
			"corpus_enabled_rule":          "corpus-enabled/ = corpus/ after adding to each pod (template) annotations dapr.io/enabled: \"true\" and dapr.io/app-id: <metadata.name of the object, or its generateName without the trailing '-'>, each only if absent",
		},
	}
	if len(installs) > 0 {
		meta["install"] = installs
	}
	b, err := yaml.Marshal(meta)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
