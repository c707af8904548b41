// Command istio-reference renders meshswitch's Istio goldens with Istio's own
// injection package (pkg/kube/inject), wired the way `istioctl kube-inject`
// wires it offline: templates and values from the istio-discovery chart
// rendered with its default values, the default MeshConfig, revision
// "default" (passed to the injector as ""), and no cluster client.
//
// With -install DIR, each folder DIR/<name> is rendered by an install with
// other values: DIR/<name>/values.yaml holds istio-discovery chart values
// set over the defaults (meshConfig included), the folder's other *.yaml
// files are its inputs, and the goldens go to install/<name>/. A `revision`
// there installs that revision (ConfigMaps istio-sidecar-injector-<rev> and
// istio-<rev>) and injects as its webhook does (the injector's revision, what
// kube-inject's --revision passes).
//
// Usage:
//
//	istio-reference -tag 1.30.3 -out tests/reference/istio/golden/1.30.3 \
//	    -install tests/reference/istio/install \
//	    corpus=tests/corpus cases=tests/reference/istio/cases
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"

	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	yamlDecoder "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	meshconfig "istio.io/api/mesh/v1alpha1"

	"istio.io/istio/operator/pkg/helm"
	"istio.io/istio/operator/pkg/values"
	"istio.io/istio/pilot/pkg/features"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/kube/inject"
	"istio.io/istio/pkg/util/protomarshal"
)

const (
	chartDir         = "istio-control/istio-discovery"
	releaseName      = "istiod"
	releaseNamespace = "istio-system"
	injectorCM       = "istio-sidecar-injector"
	meshCM           = "istio"
	installValues    = "values.yaml"
	defaultNamespace = "default"
	tagWebhookPrefix = "istio-revision-tag-"
)

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "istio-reference: "+format+"\n", a...)
	os.Exit(1)
}

// chartInjectorConfig renders the istio-discovery chart (embedded from the
// release tree by the replace directive) with the given values over its
// defaults and returns the injector ConfigMap's `config` and `values` keys
// and the mesh ConfigMap's `mesh` key. A revision install names its
// ConfigMaps <name>-<revision>, as the chart does for a non-empty revision.
func chartInjectorConfig(userValues map[string]any, revision string) (string, string, string) {
	config, vals, meshText, _ := chartRender(userValues, revision)
	return config, vals, meshText
}

// chartRender is chartInjectorConfig plus the metadata (name, labels) of
// each revision tag's webhook configuration the chart renders (revisionTags).
func chartRender(userValues map[string]any, revision string) (string, string, string, map[string]any) {
	iop := values.Map{"spec": map[string]any{"values": userValues}}
	mfs, _, err := helm.Render(releaseName, releaseNamespace, chartDir, iop, nil)
	if err != nil {
		fail("render chart: %v", err)
	}
	var config, vals, meshText string
	tags := map[string]any{}
	found := 0
	for _, m := range mfs {
		if m.GetKind() == "MutatingWebhookConfiguration" && strings.HasPrefix(m.GetName(), tagWebhookPrefix) {
			tags[m.GetName()] = map[string]any{"metadata": map[string]any{"name": m.GetName(), "labels": m.GetLabels()}}
			continue
		}
		if m.GetKind() != "ConfigMap" {
			continue
		}
		data, _, _ := unstructuredData(m.Object)
		switch m.GetName() {
		case revisionName(injectorCM, revision):
			config, vals = data["config"], data["values"]
			found++
		case revisionName(meshCM, revision):
			meshText = data["mesh"]
			found++
		}
	}
	if found != 2 {
		fail("chart rendered no ConfigMap %s or %s", revisionName(injectorCM, revision), revisionName(meshCM, revision))
	}
	return config, vals, meshText, tags
}

// revisionName is the chart's name of a revision's object: name, or
// name-<revision> for a non-empty revision.
func revisionName(name, revision string) string {
	if revision == "" {
		return name
	}
	return name + "-" + revision
}

// mergeValues sets src over dst, map by map, as Helm merges a values file
// over the chart's.
func mergeValues(dst, src map[string]any) map[string]any {
	out := deepCopy(dst)
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(dm, sm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

func unstructuredData(obj map[string]any) (map[string]string, bool, error) {
	out := map[string]string{}
	d, ok := obj["data"].(map[string]any)
	if !ok {
		return out, false, nil
	}
	for k, v := range d {
		s, _ := v.(string)
		out[k] = s
	}
	return out, true, nil
}

// podTemplatePath is where the pod template sits in an object of this kind,
// as IntoObject finds it. nil means the object is a Pod (metadata and spec at
// the top).
func podTemplatePath(kind string) []string {
	switch kind {
	case "Pod":
		return nil
	case "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template"}
	default:
		return []string{"spec", "template"}
	}
}

func getMap(m map[string]any, path []string) map[string]any {
	cur := m
	for _, p := range path {
		next, ok := cur[p].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

func ensureMap(m map[string]any, key string) map[string]any {
	if v, ok := m[key].(map[string]any); ok {
		return v
	}
	v := map[string]any{}
	m[key] = v
	return v
}

// pruneNulls drops keys whose value is null: the typed round trip inside the
// injector writes absent optional fields (e.g. creationTimestamp) as null.
func pruneNulls(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if x == nil {
				delete(t, k)
				continue
			}
			t[k] = pruneNulls(x)
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = pruneNulls(x)
		}
		return t
	default:
		return v
	}
}

// dropEmptyResources removes the `resources: {}` that the typed round trip
// adds to app containers which had no resources in the input. An empty
// resources object means exactly what an absent one means.
func dropEmptyResources(spec, origSpec map[string]any) {
	for _, list := range []string{"containers", "initContainers"} {
		had := map[string]bool{}
		if origSpec != nil {
			if cs, ok := origSpec[list].([]any); ok {
				for _, c := range cs {
					if cm, ok := c.(map[string]any); ok {
						if _, ok := cm["resources"]; ok {
							had[fmt.Sprint(cm["name"])] = true
						}
					}
				}
			}
		}
		cs, _ := spec[list].([]any)
		for _, c := range cs {
			cm, ok := c.(map[string]any)
			if !ok {
				continue
			}
			if r, ok := cm["resources"].(map[string]any); ok && len(r) == 0 && !had[fmt.Sprint(cm["name"])] {
				delete(cm, "resources")
			}
		}
	}
}

func deepCopy(v map[string]any) map[string]any {
	b, _ := json.Marshal(v)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

type injector struct {
	templates inject.Templates
	values    inject.ValuesConfig
	// meshConfig gives a fresh MeshConfig per document: the release default,
	// or for an install folder the chart's mesh ConfigMap over the defaults,
	// as istiod reads it.
	meshConfig func() *meshconfig.MeshConfig
	// revision is the injector's own ("" for the default revision, as
	// kube-inject passes it; a revision's istiod passes its REVISION).
	revision string
}

// newInjector loads the injector ConfigMap's two keys as kube-inject does.
func newInjector(configText, valuesText string, meshConfig func() *meshconfig.MeshConfig, revision string) (*injector, inject.Config) {
	cfg, err := inject.UnmarshalConfig([]byte(configText))
	if err != nil {
		fail("injector config: %v", err)
	}
	templs, err := inject.ParseTemplates(cfg.RawTemplates)
	if err != nil {
		fail("parse templates: %v", err)
	}
	vc, err := inject.NewValuesConfig(valuesText)
	if err != nil {
		fail("values: %v", err)
	}
	return &injector{templates: templs, values: vc, meshConfig: meshConfig, revision: revision}, cfg
}

// injectDoc injects one document. It returns the output object and, when the
// injector skipped or refused the object, its reason text.
func (ij *injector) injectDoc(raw []byte) (map[string]any, string) {
	var orig map[string]any
	if err := yaml.Unmarshal(raw, &orig); err != nil {
		fail("parse document: %v", err)
	}
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	_ = yaml.Unmarshal(raw, &tm)
	gvk := schema.FromAPIVersionAndKind(tm.APIVersion, tm.Kind)

	// kube-inject injects each item of a v1 List (IntoObject recurses into
	// them); do the same item by item so each item gets its own namespace.
	if tm.APIVersion == "v1" && tm.Kind == "List" {
		res := deepCopy(orig)
		items, _ := res["items"].([]any)
		var reasons []string
		for j, it := range items {
			b, _ := json.Marshal(it)
			o, r := ij.injectDoc(b)
			items[j] = o
			if r != "" {
				reasons = append(reasons, fmt.Sprintf("items[%d]: %s", j, r))
			}
		}
		return res, strings.Join(reasons, "\n")
	}

	// The admission webhook always sees the pod's namespace; kube-inject only
	// sees what the file says. Give the object and its pod template the
	// effective namespace (metadata.namespace, else "default") so namespace
	// dependent behaviour (system namespaces, POD identity, otel attributes)
	// follows the webhook, and drop it again from the output where the input
	// had none.
	work := deepCopy(orig)
	topMeta := ensureMap(work, "metadata")
	ns, _ := topMeta["namespace"].(string)
	topHadNS := ns != ""
	if ns == "" {
		ns = defaultNamespace
	}
	topMeta["namespace"] = ns
	tplPath := podTemplatePath(tm.Kind)
	tplHadNS := true
	if tplPath != nil {
		if tpl := getMap(work, tplPath); tpl != nil {
			tmeta := ensureMap(tpl, "metadata")
			if s, _ := tmeta["namespace"].(string); s == "" {
				tplHadNS = false
				tmeta["namespace"] = ns
			}
		}
	}
	workJSON, _ := json.Marshal(work)

	obj, err := inject.FromRawToObject(workJSON)
	if err != nil {
		if kruntime.IsNotRegisteredError(err) {
			// kube-inject writes kinds it does not know unchanged.
			return orig, ""
		}
		return orig, fmt.Sprintf("%s %s: %v", gvk.Kind, tm.APIVersion, err)
	}

	var warnings []string
	var out any
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic in injector: %v", r)
			}
		}()
		out, err = inject.IntoObject(nil, ij.templates, ij.values, ij.revision, ij.meshConfig(), obj,
			func(w string) { warnings = append(warnings, strings.TrimSpace(w)) })
	}()
	if err != nil {
		return orig, stableReason(err.Error())
	}
	b, err := json.Marshal(out)
	if err != nil {
		fail("marshal injected object: %v", err)
	}
	var injected map[string]any
	if err := json.Unmarshal(b, &injected); err != nil {
		fail("unmarshal injected object: %v", err)
	}
	reason := strings.Join(warnings, "\n")
	if len(warnings) > 0 {
		// Skipped: written unchanged.
		return orig, reason
	}

	// Start from the input document and replace only the pod template (or,
	// for a Pod, its metadata and spec) with what the injector produced, so
	// the rest of the object is byte-for-byte the input.
	res := deepCopy(orig)
	if tplPath == nil {
		im := pruneNulls(injected["metadata"]).(map[string]any)
		if !topHadNS {
			delete(im, "namespace")
		}
		res["metadata"] = im
		spec := pruneNulls(injected["spec"]).(map[string]any)
		dropEmptyResources(spec, getMap(orig, []string{"spec"}))
		res["spec"] = spec
		return res, ""
	}
	itpl := getMap(injected, tplPath)
	if itpl == nil {
		return orig, "injector output has no pod template"
	}
	itpl = pruneNulls(itpl).(map[string]any)
	if spec, ok := itpl["spec"].(map[string]any); ok {
		dropEmptyResources(spec, getMap(orig, append(append([]string{}, tplPath...), "spec")))
	}
	if !tplHadNS {
		if m, ok := itpl["metadata"].(map[string]any); ok {
			delete(m, "namespace")
			if len(m) == 0 {
				delete(itpl, "metadata")
			}
		}
	}
	parent := getMap(res, tplPath[:len(tplPath)-1])
	if parent == nil {
		return orig, "input has no pod template"
	}
	parent[tplPath[len(tplPath)-1]] = itpl
	return res, ""
}

var haveList = regexp.MustCompile(`have ([A-Za-z0-9_-]+(, [A-Za-z0-9_-]+)*)`)

// stableReason sorts the template list in "requested template ... not found;
// have a, b, c": the injector prints it in Go map order, which changes from
// run to run.
func stableReason(s string) string {
	return haveList.ReplaceAllStringFunc(s, func(m string) string {
		names := strings.Split(strings.TrimPrefix(m, "have "), ", ")
		sort.Strings(names)
		return "have " + strings.Join(names, ", ")
	})
}

func splitDocs(data []byte) ([][]byte, error) {
	reader := yamlDecoder.NewYAMLReader(bufio.NewReaderSize(bytes.NewReader(data), 4096))
	var docs [][]byte
	for {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		if v == nil {
			continue // empty document (comments only)
		}
		docs = append(docs, raw)
	}
	return docs, nil
}

func dumpDocs(docs []map[string]any) []byte {
	var buf bytes.Buffer
	for i, d := range docs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := yaml.Marshal(d)
		if err != nil {
			fail("dump: %v", err)
		}
		buf.Write(b)
	}
	return buf.Bytes()
}

// reasonsYAML writes `index: "text"` lines, integer keys in document order;
// a JSON string is a valid YAML double-quoted scalar.
func reasonsYAML(reasons map[int]string) []byte {
	var idx []int
	for i := range reasons {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var buf bytes.Buffer
	for _, i := range idx {
		var q bytes.Buffer
		enc := json.NewEncoder(&q)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(reasons[i])
		fmt.Fprintf(&buf, "%d: %s", i, q.Bytes())
	}
	return buf.Bytes()
}

func writeFile(path string, data []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		fail("%v", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		fail("%v", err)
	}
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func main() {
	tag := flag.String("tag", "", "Istio release tag the program was built against (recorded in meta.yaml)")
	hub := flag.String("hub", "docker.io/istio", "global.hub given to the chart (the published chart's value)")
	outDir := flag.String("out", "", "output directory, tests/reference/istio/golden/<tag>")
	installDir := flag.String("install", "", "folder of install folders: <name>/values.yaml (chart values over the defaults) and <name>/*.yaml inputs")
	flag.Parse()
	if *tag == "" || *outDir == "" || flag.NArg() == 0 {
		fail("usage: istio-reference -tag TAG -out DIR name=inputdir...")
	}
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "ENABLE_NATIVE_SIDECARS=") {
			fail("ENABLE_NATIVE_SIDECARS must not be set: goldens use the release default")
		}
	}

	// The chart in the git tree carries a development hub and tag "latest";
	// release tooling rewrites them in the published chart to the release hub
	// and the release tag. These two are the only values set beyond defaults.
	userValues := map[string]any{"global": map[string]any{"hub": *hub, "tag": *tag}}
	configText, valuesText, defaultMesh := chartInjectorConfig(userValues, "")
	ij, cfg := newInjector(configText, valuesText, mesh.DefaultMeshConfig, "")

	if err := os.RemoveAll(*outDir); err != nil {
		fail("%v", err)
	}

	counts := map[string]int{}
	for _, arg := range flag.Args() {
		name, dir, ok := strings.Cut(arg, "=")
		if !ok {
			fail("input %q is not name=dir", arg)
		}
		renderFolder(ij, dir, filepath.Join(*outDir, name), counts)
	}

	installs := map[string]any{}
	if *installDir != "" {
		folders, _ := filepath.Glob(filepath.Join(*installDir, "*", installValues))
		sort.Strings(folders)
		for _, valuesFile := range folders {
			dir := filepath.Dir(valuesFile)
			name := filepath.Base(dir)
			raw, err := os.ReadFile(valuesFile)
			if err != nil {
				fail("%v", err)
			}
			var set map[string]any
			if err := yaml.Unmarshal(raw, &set); err != nil {
				fail("%s: %v", valuesFile, err)
			}
			folderValues := mergeValues(userValues, set)
			// The chart's `revision`; kube-inject --revision default renders
			// with "" too.
			revision, _ := set["revision"].(string)
			injectRevision := revision
			if injectRevision == "default" {
				injectRevision = ""
			}
			fConfig, fValues, fMesh, fTags := chartRender(folderValues, revision)
			if _, err := mesh.ApplyMeshConfigDefaults(fMesh); err != nil {
				fail("%s: mesh config: %v", valuesFile, err)
			}
			fij, fcfg := newInjector(fConfig, fValues, func() *meshconfig.MeshConfig {
				m, _ := mesh.ApplyMeshConfigDefaults(fMesh)
				return m
			}, injectRevision)
			renderFolder(fij, dir, filepath.Join(*outDir, "install", name), counts)
			entry := map[string]any{
				"valuesSet":        set,
				"config_sha256":    sha(fConfig),
				"templates":        "the release's own; same as the default install's unless config_sha256 differs",
				"defaultTemplates": fcfg.DefaultTemplates,
				// What the cluster's ConfigMaps hold: meshswitch's discovery reads these two keys.
				"configMaps": map[string]any{
					revisionName(injectorCM, revision): map[string]any{"values": fValues},
					revisionName(meshCM, revision):     map[string]any{"mesh": fMesh},
				},
			}
			if len(fTags) > 0 {
				// Revision tags (chart value revisionTags): the webhook
				// configurations a cluster would hold, by name.
				entry["revisionTags"] = fTags
			}
			if revision != "" {
				// Its control plane is istiod-<revision>; the injector was given
				// injectRevision. Absent for the default revision.
				entry["revision"] = revision
				entry["istiod"] = revisionName(releaseName, revision)
				// The default revision's install beside it (a canary upgrade):
				// its ConfigMaps are in the cluster too, and must not be read.
				entry["defaultRevisionConfigMaps"] = map[string]any{
					injectorCM: map[string]any{"values": valuesText},
					meshCM:     map[string]any{"mesh": defaultMesh},
				}
			}
			installs[name] = entry
		}
	}

	writeFile(filepath.Join(*outDir, "meta.yaml"), metaYAML(*tag, userValues, cfg, configText, valuesText, counts, installs))
	fmt.Fprintf(os.Stderr, "istio %s: %d files, %d documents, %d skipped or refused -> %s\n",
		*tag, counts["files"], counts["documents"], counts["skipped_or_refused"], *outDir)
}

// renderFolder injects every *.yaml input of dir (but an install folder's
// values.yaml) and writes the goldens to out.
func renderFolder(ij *injector, dir, out string, counts map[string]int) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	sort.Strings(files)
	for _, f := range files {
		if filepath.Base(f) == installValues {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			fail("%v", err)
		}
		docs, err := splitDocs(data)
		if err != nil {
			fail("%s: %v", f, err)
		}
		var outs []map[string]any
		reasons := map[int]string{}
		for i, d := range docs {
			o, r := ij.injectDoc(d)
			outs = append(outs, o)
			if r != "" {
				reasons[i] = r
			}
		}
		stem := strings.TrimSuffix(filepath.Base(f), ".yaml")
		writeFile(filepath.Join(out, stem+".yaml"), dumpDocs(outs))
		if len(reasons) > 0 {
			writeFile(filepath.Join(out, stem+".reasons.yaml"), reasonsYAML(reasons))
		}
		counts["files"]++
		counts["documents"] += len(docs)
		counts["skipped_or_refused"] += len(reasons)
	}
}

func metaYAML(tag string, userValues map[string]any, cfg inject.Config, configText, valuesText string, counts map[string]int, installs map[string]any) []byte {
	var vals map[string]any
	if err := json.Unmarshal([]byte(valuesText), &vals); err != nil {
		if err := yaml.Unmarshal([]byte(valuesText), &vals); err != nil {
			fail("values: %v", err)
		}
	}
	meshMap, err := protomarshal.ToJSONMap(mesh.DefaultMeshConfig())
	if err != nil {
		fail("mesh config: %v", err)
	}
	tmplSums := map[string]string{}
	for name, t := range cfg.RawTemplates {
		tmplSums[name] = sha(t)
	}
	mods := map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			v := d.Version
			switch {
			case d.Path == "istio.io/istio":
				v = "release tag " + tag + " (the release tree, by replace)"
			case d.Replace != nil && d.Replace.Version != "" && d.Replace.Version != "(devel)":
				v = fmt.Sprintf("%s, replaced by %s@%s (a tag on the same commit as the pin; the proxy refuses the pinned name)", d.Version, d.Replace.Path, d.Replace.Version)
			case d.Replace != nil:
				v = fmt.Sprintf("%s, replaced by a local tree of that module at the pinned commit, which the proxy refuses (%s)", d.Version,
					filepath.Join(filepath.Base(filepath.Dir(d.Replace.Path)), filepath.Base(d.Replace.Path)))
			}
			mods[d.Path] = v
		}
	}
	var ignored []string
	for ns := range inject.IgnoredNamespaces {
		ignored = append(ignored, ns)
	}
	sort.Strings(ignored)

	meta := map[string]any{
		"mesh":    "istio",
		"release": tag,
		"go": map[string]any{
			"toolchain": runtime.Version(),
			"modules":   mods,
		},
		"injector": map[string]any{
			"package":                  "istio.io/istio/pkg/kube/inject",
			"entrypoint":               "IntoObject (per document, as IntoResourceFile does for each document of a file)",
			"wiring":                   "istioctl kube-inject offline: no cluster client (Injector nil), templates and values from the chart's injector ConfigMap, mesh.DefaultMeshConfig()",
			"revision":                 "default",
			"revisionPassedToInjector": "",
			"policy":                   "enabled (kube-inject always injects unless the pod opts out)",
			"defaultTemplates":         []string{"sidecar"},
			"nativeSidecarDefault":     fmt.Sprintf("%v (ENABLE_NATIVE_SIDECARS unset = %q mode; without a cluster client kube-inject enables native sidecars only when the mode is \"true\")", false, nativeMode()),
			"ignoredNamespaces":        ignored,
			"namespace":                "metadata.namespace of the object, else \"default\"; set on the object and on its pod template before injection (as the webhook sees the pod's namespace), removed again from the output where the input had none",
			"proxyConfigAnnotation":    "proxy.istio.io/config is applied over the mesh defaultConfig (mesh.ApplyProxyConfig), as kube-inject does; no ProxyConfig resources",
			"env":                      "no ISTIO/PILOT environment variables set for the renderer",
		},
		"chart": map[string]any{
			"path":             "manifests/charts/" + chartDir,
			"releaseName":      releaseName,
			"releaseNamespace": releaseNamespace,
			"userValues":       userValues,
			"renderedBy":       "istio.io/istio/operator/pkg/helm.Render (Helm engine, chart defaults)",
			"injectorConfigMap": map[string]any{
				"name":                 injectorCM,
				"policy":               string(cfg.Policy),
				"defaultTemplates":     cfg.DefaultTemplates,
				"alwaysInjectSelector": cfg.AlwaysInjectSelector,
				"neverInjectSelector":  cfg.NeverInjectSelector,
				"injectedAnnotations":  cfg.InjectedAnnotations,
				"aliases":              cfg.Aliases,
				"templates_sha256":     tmplSums,
				"config_sha256":        sha(configText),
				"values":               vals,
			},
		},
		"meshConfig": meshMap,
		"counts":     counts,
	}
	if len(installs) > 0 {
		// Each install folder's values (set over userValues), and the two
		// ConfigMap keys that install's chart renders; its MeshConfig is that
		// `mesh` over the release defaults (mesh.ApplyMeshConfigDefaults).
		meta["install"] = installs
	}
	b, err := yaml.Marshal(meta)
	if err != nil {
		fail("meta: %v", err)
	}
	return b
}

func nativeMode() string {
	switch features.EnableNativeSidecars {
	case features.NativeSidecarModeEnabled:
		return "true"
	case features.NativeSidecarModeDisabled:
		return "false"
	default:
		return "auto"
	}
}
