// Command linkerd-reference renders golden files with Linkerd's own proxy injector.
//
// It drives the webhook handler of controller/proxy-injector (the function the
// linkerd-proxy-injector Deployment serves) offline: a fake metadata API holds the
// namespaces, the values file and the trust bundle are written where the handler reads
// them (inside a private mount namespace, see sandbox.go), and the JSON patch the handler
// answers is applied to the input object. See README.md.
//
// Usage:
//
//	linkerd-reference -version edge-26.8.3 -anchors trust-anchors.pem -out golden/edge-26.8.3 \
//	    -in corpus=../../corpus -in cases=cases
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"

	jsonpatch "github.com/evanphx/json-patch"
	"github.com/linkerd/linkerd2/charts"
	"github.com/linkerd/linkerd2/controller/k8s"
	injector "github.com/linkerd/linkerd2/controller/proxy-injector"
	"github.com/linkerd/linkerd2/pkg/charts/linkerd2"
	"github.com/linkerd/linkerd2/pkg/inject"
	pkgK8s "github.com/linkerd/linkerd2/pkg/k8s"
	"github.com/linkerd/linkerd2/pkg/version"
	log "github.com/sirupsen/logrus"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/yaml"
)

// Fixed inputs that a cluster would supply. They are written to meta.yaml.
const (
	controlPlaneNamespace = "linkerd" // the namespace `linkerd install` uses
	defaultNamespace      = "default"
)

// defaultNamespaceAnnotations are the annotations of a namespace that the input file does
// not declare: opted in, so that the corpus shows the rendered proxy.
var defaultNamespaceAnnotations = map[string]string{pkgK8s.ProxyInjectAnnotation: pkgK8s.ProxyInjectEnabled}

// Kinds the handler is driven with; everything else passes through unchanged, as
// meshswitch only mutates Pods (and, offline, the pod templates of these kinds).
var podKinds = map[string]bool{
	"Pod": true, "Deployment": true, "StatefulSet": true, "DaemonSet": true, "ReplicaSet": true,
	"ReplicationController": true, "Job": true, "CronJob": true,
}

type inputDir struct{ label, path string }

type inputDirs []inputDir

// folderValues holds, per input label, values set over the cluster's for that folder's
// inputs (`-set cni:cniEnabled=true`): an install option the default install does not show.
type folderValues map[string]map[string]any

func (f folderValues) String() string { return fmt.Sprint(map[string]map[string]any(f)) }
func (f folderValues) Set(s string) error {
	label, assignment, ok := strings.Cut(s, ":")
	path, raw, ok2 := strings.Cut(assignment, "=")
	if !ok || !ok2 || label == "" || path == "" {
		return fmt.Errorf("want LABEL:PATH=VALUE, got %q", s)
	}
	var value any
	if err := yaml.Unmarshal([]byte(raw), &value); err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	if f[label] == nil {
		f[label] = map[string]any{}
	}
	f[label][path] = value
	return nil
}

func (d *inputDirs) String() string { return fmt.Sprint(*d) }
func (d *inputDirs) Set(s string) error {
	label, path, ok := strings.Cut(s, "=")
	if !ok || label == "" || path == "" {
		return fmt.Errorf("want LABEL=DIR, got %q", s)
	}
	*d = append(*d, inputDir{label, path})
	return nil
}

func main() {
	var (
		outDir    = flag.String("out", "", "output directory, golden/<version>")
		anchors   = flag.String("anchors", "", "PEM file with the trust anchors")
		releaseV  = flag.String("version", "", "release tag (must match the linked pkg/version.Version)")
		inputs    inputDirs
		sets      = folderValues{}
		verbosity = flag.String("log-level", "error", "logrus level of the injector's own logs")
	)
	flag.Var(&inputs, "in", "LABEL=DIR: render every DIR/*.yaml into OUT/LABEL/ (repeatable)")
	flag.Var(sets, "set", "LABEL:PATH=VALUE: a value over the cluster's for the inputs of LABEL (repeatable)")
	flag.Parse()
	if *outDir == "" || *anchors == "" || *releaseV == "" || len(inputs) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if version.Version != *releaseV {
		fatalf("the program was linked with version %q but -version is %q", version.Version, *releaseV)
	}
	lvl, err := log.ParseLevel(*verbosity)
	if err != nil {
		fatalf("%v", err)
	}
	log.SetLevel(lvl)
	log.SetOutput(os.Stderr)

	enterSandbox() // re-executes itself in a private mount namespace; returns in the child

	anchorsPEM, err := os.ReadFile(*anchors)
	if err != nil {
		fatalf("%v", err)
	}
	values, valuesYAML, err := clusterValues(string(anchorsPEM))
	if err != nil {
		fatalf("values: %v", err)
	}
	if err := installMounts(valuesYAML, anchorsPEM); err != nil {
		fatalf("mounts: %v", err)
	}
	nsSel, objSel, err := webhookSelectors()
	if err != nil {
		fatalf("selectors: %v", err)
	}

	r := &renderer{
		values:  values,
		handler: injector.Inject(controlPlaneNamespace, inject.GetOverriddenValues),
		nsSel:   nsSel,
		objSel:  objSel,
	}
	if fp, ok := pickValue(valuesYAML, "webhookFailurePolicy").(string); ok {
		r.failurePolicy = fp
	}

	if err := os.RemoveAll(*outDir); err != nil {
		fatalf("%v", err)
	}
	count := 0
	for _, in := range inputs {
		files, err := filepath.Glob(filepath.Join(in.path, "*.yaml"))
		if err != nil {
			fatalf("%v", err)
		}
		sort.Strings(files)
		inValues, inYAML := values, valuesYAML
		if len(sets[in.label]) > 0 {
			if inValues, inYAML, err = withValues(valuesYAML, sets[in.label]); err != nil {
				fatalf("-set %s: %v", in.label, err)
			}
		}
		if err := installMounts(inYAML, anchorsPEM); err != nil {
			fatalf("mounts: %v", err)
		}
		r.values = inValues
		for _, f := range files {
			if err := r.renderFile(f, filepath.Join(*outDir, in.label)); err != nil {
				fatalf("%s: %v", f, err)
			}
			count++
		}
	}
	if err := os.WriteFile(filepath.Join(*outDir, "values.yaml"), valuesYAML, 0o644); err != nil {
		fatalf("%v", err)
	}
	if err := writeMeta(filepath.Join(*outDir, "meta.yaml"), *releaseV, *anchors, anchorsPEM, valuesYAML, values, nsSel, objSel, sets); err != nil {
		fatalf("%v", err)
	}
	fmt.Fprintf(os.Stderr, "linkerd-reference %s: %d files, %d documents, %d injected, %d skipped or passed through\n",
		*releaseV, count, r.docs, r.injected, r.docs-r.injected)
}

func pickValue(valuesYAML []byte, path string) any {
	var cur any
	if err := yaml.Unmarshal(valuesYAML, &cur); err != nil {
		return nil
	}
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "linkerd-reference: "+format+"\n", args...)
	os.Exit(1)
}

// clusterValues builds the values the injector reads from the linkerd-config ConfigMap
// after a default install: the chart defaults (linkerd2.NewValues), the trust anchors,
// and identityTrustDomain filled with clusterDomain as the chart's config.yaml template does.
func clusterValues(anchorsPEM string) (*linkerd2.Values, []byte, error) {
	v, err := linkerd2.NewValues()
	if err != nil {
		return nil, nil, err
	}
	v.IdentityTrustAnchorsPEM = anchorsPEM
	if v.IdentityTrustDomain == "" {
		v.IdentityTrustDomain = v.ClusterDomain
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		return nil, nil, err
	}
	return v, out, nil
}

// withValues returns the cluster's values with the given paths (a.b.c) set: the linkerd-config
// of an install made with those options.
func withValues(valuesYAML []byte, sets map[string]any) (*linkerd2.Values, []byte, error) {
	var tree map[string]any
	if err := yaml.Unmarshal(valuesYAML, &tree); err != nil {
		return nil, nil, err
	}
	for path, value := range sets {
		parts := strings.Split(path, ".")
		node := tree
		for _, p := range parts[:len(parts)-1] {
			next, ok := node[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				node[p] = next
			}
			node = next
		}
		node[parts[len(parts)-1]] = value
	}
	out, err := yaml.Marshal(tree)
	if err != nil {
		return nil, nil, err
	}
	var v linkerd2.Values
	if err := yaml.Unmarshal(out, &v); err != nil {
		return nil, nil, err
	}
	return &v, out, nil
}

// webhookSelectors reads the MutatingWebhookConfiguration's namespaceSelector and
// objectSelector from the release chart's default values: the API server applies them
// before the handler is ever called.
func webhookSelectors() (labels.Selector, labels.Selector, error) {
	raw, err := charts.Templates.ReadFile("linkerd-control-plane/values.yaml")
	if err != nil {
		return nil, nil, err
	}
	var doc struct {
		ProxyInjector struct {
			NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector"`
			ObjectSelector    *metav1.LabelSelector `json:"objectSelector"`
		} `json:"proxyInjector"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, nil, err
	}
	toSel := func(s *metav1.LabelSelector) (labels.Selector, error) {
		if s == nil {
			return labels.Everything(), nil
		}
		return metav1.LabelSelectorAsSelector(s)
	}
	ns, err := toSel(doc.ProxyInjector.NamespaceSelector)
	if err != nil {
		return nil, nil, err
	}
	obj, err := toSel(doc.ProxyInjector.ObjectSelector)
	return ns, obj, err
}

type renderer struct {
	values         *linkerd2.Values
	handler        func(context.Context, *k8s.MetadataAPI, *admissionv1beta1.AdmissionRequest, record.EventRecorder) (*admissionv1beta1.AdmissionResponse, error)
	nsSel, objSel  labels.Selector
	failurePolicy  string
	docs, injected int
}

type namespaceInfo struct {
	labels, annotations map[string]string
	declared            bool
}

// splitDocs returns the YAML documents of a file as JSON objects; empty documents are dropped.
func splitDocs(data []byte) ([]map[string]any, error) {
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []map[string]any
	for {
		chunk, err := rd.Read()
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		j, err := yaml.YAMLToJSON(chunk)
		if err != nil {
			return nil, err
		}
		var obj map[string]any
		if err := json.Unmarshal(j, &obj); err != nil {
			return nil, fmt.Errorf("document is not a mapping: %w", err)
		}
		if obj == nil {
			continue
		}
		docs = append(docs, obj)
	}
}

func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}

func strMap(m map[string]any, path ...string) map[string]string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return map[string]string{}
		}
		cur = mm[p]
	}
	out := map[string]string{}
	if mm, ok := cur.(map[string]any); ok {
		for k, v := range mm {
			if s, ok := v.(string); ok {
				out[k] = s
			}
		}
	}
	return out
}

func docNamespace(obj map[string]any) string {
	if ns := str(obj, "metadata", "namespace"); ns != "" {
		return ns
	}
	return defaultNamespace
}

// podLabels are the labels of the pod the object creates (for the webhook's objectSelector).
func podLabels(obj map[string]any) map[string]string {
	switch str(obj, "kind") {
	case "Pod":
		return strMap(obj, "metadata", "labels")
	case "CronJob":
		return strMap(obj, "spec", "jobTemplate", "spec", "template", "metadata", "labels")
	default:
		return strMap(obj, "spec", "template", "metadata", "labels")
	}
}

func (r *renderer) renderFile(path, outDir string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	docs, err := splitDocs(data)
	if err != nil {
		return err
	}

	// The namespaces: declared ones carry their own labels and annotations; the others
	// get the fixed defaults.
	namespaces := map[string]*namespaceInfo{}
	for _, d := range docs {
		if str(d, "kind") == "Namespace" && str(d, "apiVersion") == "v1" {
			name := str(d, "metadata", "name")
			namespaces[name] = &namespaceInfo{labels: strMap(d, "metadata", "labels"), annotations: strMap(d, "metadata", "annotations"), declared: true}
		}
	}
	var visit func(d map[string]any)
	visit = func(d map[string]any) {
		if items, ok := d["items"].([]any); ok && strings.HasSuffix(str(d, "kind"), "List") {
			for _, it := range items {
				if m, ok := it.(map[string]any); ok {
					visit(m)
				}
			}
			return
		}
		ns := docNamespace(d)
		if _, ok := namespaces[ns]; !ok {
			ann := map[string]string{}
			for k, v := range defaultNamespaceAnnotations {
				ann[k] = v
			}
			namespaces[ns] = &namespaceInfo{labels: map[string]string{}, annotations: ann}
		}
	}
	for _, d := range docs {
		visit(d)
	}
	var nsConfigs []string
	var addOwners func(d map[string]any)
	addOwners = func(d map[string]any) {
		if items, ok := d["items"].([]any); ok && strings.HasSuffix(str(d, "kind"), "List") {
			for _, it := range items {
				if m, ok := it.(map[string]any); ok {
					addOwners(m)
				}
			}
			return
		}
		if o := intermediateOwner(d); o != nil {
			b, err := yaml.Marshal(o)
			if err == nil {
				nsConfigs = append(nsConfigs, string(b))
			}
		}
	}
	for _, d := range docs {
		addOwners(d)
	}
	for name, info := range namespaces {
		info.labels["kubernetes.io/metadata.name"] = name // set by the API server
		nsObj := map[string]any{
			"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": name, "labels": info.labels, "annotations": info.annotations},
		}
		b, err := yaml.Marshal(nsObj)
		if err != nil {
			return err
		}
		nsConfigs = append(nsConfigs, string(b))
	}
	sort.Strings(nsConfigs)
	api, err := k8s.NewFakeMetadataAPI(nsConfigs)
	if err != nil {
		return err
	}
	api.Sync(nil)

	var out bytes.Buffer
	reasons := map[int]string{}
	for i, d := range docs {
		res, reason, err := r.renderDoc(api, namespaces, d)
		if err != nil {
			return fmt.Errorf("document %d: %w", i, err)
		}
		if reason != "" {
			reasons[i] = reason
		}
		j, err := json.Marshal(res)
		if err != nil {
			return err
		}
		y, err := yaml.JSONToYAML(j)
		if err != nil {
			return err
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(y)
	}

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	stem := strings.TrimSuffix(filepath.Base(path), ".yaml")
	if err := os.WriteFile(filepath.Join(outDir, stem+".yaml"), out.Bytes(), 0o644); err != nil {
		return err
	}
	if len(reasons) > 0 {
		// Integer keys: document index -> the injector's reason text (a JSON string is a
		// valid YAML scalar).
		var b bytes.Buffer
		for i := range docs {
			if text, ok := reasons[i]; ok {
				q, _ := json.Marshal(text)
				fmt.Fprintf(&b, "%d: %s\n", i, q)
			}
		}
		if err := os.WriteFile(filepath.Join(outDir, stem+".reasons.yaml"), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// renderDoc returns the object as the injector leaves it, and the reason when the
// injector skipped it (empty when it injected it or when the kind is not a pod kind).
func (r *renderer) renderDoc(api *k8s.MetadataAPI, namespaces map[string]*namespaceInfo, obj map[string]any) (map[string]any, string, error) {
	kind := str(obj, "kind")
	if items, ok := obj["items"].([]any); ok && strings.HasSuffix(kind, "List") {
		var why []string
		for idx, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				continue
			}
			res, reason, err := r.renderDoc(api, namespaces, m)
			if err != nil {
				return nil, "", err
			}
			items[idx] = res
			if reason != "" {
				why = append(why, fmt.Sprintf("items[%d]: %s", idx, reason))
			}
		}
		return obj, strings.Join(why, "; "), nil
	}
	if !podKinds[kind] {
		return obj, "", nil
	}
	r.docs++
	ns := docNamespace(obj)
	info := namespaces[ns]

	// The API server only calls the webhook for objects its selectors match.
	if !r.nsSel.Matches(labels.Set(info.labels)) {
		return obj, fmt.Sprintf("webhook not called: namespace %q does not match the MutatingWebhookConfiguration namespaceSelector (%s)", ns, r.nsSel), nil
	}
	if !r.objSel.Matches(labels.Set(podLabels(obj))) {
		return obj, fmt.Sprintf("webhook not called: the pod labels do not match the MutatingWebhookConfiguration objectSelector (%s)", r.objSel), nil
	}

	// The webhook only ever sees Pods: for a workload, the pod its controller creates
	// from the template (owned through the usual chain, so the handler's owner lookup
	// finds the workload). The request object carries metadata.namespace, as the API
	// server fills it before admission.
	pod := podFor(obj, ns)
	reqObj, err := json.Marshal(pod)
	if err != nil {
		return nil, "", err
	}
	var withNS map[string]any
	_ = json.Unmarshal(reqObj, &withNS)
	withNS["metadata"].(map[string]any)["namespace"] = ns
	raw, err := json.Marshal(withNS)
	if err != nil {
		return nil, "", err
	}
	req := &admissionv1beta1.AdmissionRequest{
		UID:       types.UID("meshswitch-reference"),
		Kind:      metav1.GroupVersionKind{Group: "", Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Group: "", Version: "v1", Resource: "pods"},
		Namespace: ns,
		Operation: admissionv1beta1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}
	resp, err := r.handler(context.Background(), api, req, record.NewFakeRecorder(100))
	if err != nil {
		// The webhook answers with an error; with the chart's failurePolicy the API
		// server then admits the pod unchanged (Ignore) or refuses it (Fail).
		return obj, fmt.Sprintf("injector error (webhook failurePolicy %s): %v", r.failurePolicy, err), nil
	}

	// Why it was (not) injected, from the same report the handler builds.
	conf := inject.NewResourceConfig(r.values, inject.OriginWebhook, controlPlaneNamespace).
		WithNsAnnotations(info.annotations).
		WithKind("Pod")
	report, err := conf.ParseMetaAndYAML(raw)
	if err != nil {
		return nil, "", err
	}
	injectable, codes := report.Injectable()
	reason := ""
	if !injectable {
		var texts []string
		for _, c := range codes {
			texts = append(texts, inject.Reasons[c])
		}
		reason = strings.Join(texts, ", ")
	}

	if len(resp.Patch) == 0 {
		return obj, reason, nil
	}
	// A patch the API server cannot decode or apply fails the request whatever the
	// failurePolicy (it is not a call failure): the pod is refused.
	patch, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		return obj, fmt.Sprintf("refused: the API server cannot decode the injector's JSON patch: %v", err), nil
	}
	patched, err := patch.Apply(reqObj)
	if err != nil {
		return obj, fmt.Sprintf("refused: the API server cannot apply the injector's JSON patch: %v", err), nil
	}
	var res map[string]any
	if err := json.Unmarshal(patched, &res); err != nil {
		return nil, "", err
	}
	if injectable {
		r.injected++
	}
	return withPod(obj, pod, res), reason, nil
}

// templatePath is where a kind keeps its pod template (nil for a Pod).
func templatePath(kind string) []string {
	switch kind {
	case "Pod":
		return nil
	case "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template"}
	default:
		return []string{"spec", "template"}
	}
}

func deepCopy(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func lookup(m map[string]any, path []string) map[string]any {
	cur := m
	for _, p := range path {
		next, _ := cur[p].(map[string]any)
		if next == nil {
			return map[string]any{}
		}
		cur = next
	}
	return cur
}

const ownerSuffix = "-reference"

// podFor returns the Pod the API server would receive for obj: obj itself for a Pod,
// else a Pod made from the template, owned the way the workload's controller owns it.
func podFor(obj map[string]any, ns string) map[string]any {
	kind := str(obj, "kind")
	if kind == "Pod" {
		p := deepCopy(obj)
		if _, ok := p["metadata"].(map[string]any); !ok {
			p["metadata"] = map[string]any{}
		}
		return p
	}
	tpl := deepCopy(lookup(obj, templatePath(kind)))
	md, _ := tpl["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
	}
	name := str(obj, "metadata", "name")
	ownerKind, ownerName, ownerAPI := kind, name, str(obj, "apiVersion")
	switch kind {
	case "Deployment":
		ownerKind, ownerName, ownerAPI = "ReplicaSet", name+ownerSuffix, "apps/v1"
	case "CronJob":
		ownerKind, ownerName, ownerAPI = "Job", name+ownerSuffix, "batch/v1"
	}
	md["generateName"] = ownerName + "-"
	md["ownerReferences"] = []any{map[string]any{
		"apiVersion": ownerAPI, "kind": ownerKind, "name": ownerName, "uid": "00000000-0000-0000-0000-000000000001",
		"controller": true, "blockOwnerDeletion": true,
	}}
	spec, _ := tpl["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
	}
	return map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}
}

// intermediateOwner is the object between the pod and the workload (the ReplicaSet of a
// Deployment, the Job of a CronJob), for the fake API the handler asks about owners.
func intermediateOwner(obj map[string]any) map[string]any {
	kind, name, ns := str(obj, "kind"), str(obj, "metadata", "name"), docNamespace(obj)
	var apiVersion, ownKind string
	switch kind {
	case "Deployment":
		apiVersion, ownKind = "apps/v1", "ReplicaSet"
	case "CronJob":
		apiVersion, ownKind = "batch/v1", "Job"
	default:
		return nil
	}
	return map[string]any{
		"apiVersion": apiVersion, "kind": ownKind,
		"metadata": map[string]any{
			"name": name + ownerSuffix, "namespace": ns,
			"ownerReferences": []any{map[string]any{
				"apiVersion": str(obj, "apiVersion"), "kind": kind, "name": name,
				"uid": "00000000-0000-0000-0000-000000000002", "controller": true,
			}},
		},
	}
}

// withPod writes the injected pod back: the Pod itself, or the workload with its
// template's metadata and spec replaced by the injected pod's (minus the fields the
// controller would have set).
func withPod(obj, pod, injected map[string]any) map[string]any {
	kind := str(obj, "kind")
	if kind == "Pod" {
		return injected
	}
	md, _ := injected["metadata"].(map[string]any)
	if md != nil {
		delete(md, "generateName")
		delete(md, "ownerReferences")
		delete(md, "namespace")
		if len(md) == 0 {
			md = nil
		}
	}
	out := deepCopy(obj)
	path := templatePath(kind)
	cur := out
	for _, p := range path {
		next, _ := cur[p].(map[string]any)
		if next == nil {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	if md != nil {
		cur["metadata"] = md
	} else {
		delete(cur, "metadata")
	}
	cur["spec"] = injected["spec"]
	return out
}

func writeMeta(path, release, anchorsPath string, anchorsPEM, valuesYAML []byte, v *linkerd2.Values, nsSel, objSel labels.Selector, sets folderValues) error {
	sum := sha256.Sum256(anchorsPEM)
	mods := map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		mods["go"] = bi.GoVersion
		for _, d := range bi.Deps {
			switch {
			case d.Path == "github.com/linkerd/linkerd2":
				mods[d.Path] = release + " (replace => checkout of the tag)"
			case strings.HasPrefix(d.Path, "k8s.io/") || strings.HasPrefix(d.Path, "sigs.k8s.io/yaml") ||
				strings.HasPrefix(d.Path, "helm.sh/") || strings.HasPrefix(d.Path, "github.com/evanphx/json-patch"):
				ver := d.Version
				if d.Replace != nil {
					ver = d.Replace.Path + " " + d.Replace.Version
				}
				mods[d.Path] = ver
			}
		}
	}
	var vm map[string]any
	if err := yaml.Unmarshal(valuesYAML, &vm); err != nil {
		return err
	}
	pick := func(path string) any {
		var cur any = vm
		for _, p := range strings.Split(path, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = m[p]
		}
		return cur
	}
	defaults := map[string]any{}
	for _, p := range []string{
		"linkerdVersion", "clusterDomain", "webhookFailurePolicy", "clusterNetworks", "cniEnabled", "imagePullPolicy",
		"proxy.image", "proxy.ports", "proxy.uid", "proxy.gid", "proxy.logLevel", "proxy.logFormat",
		"proxy.logHTTPHeaders", "proxy.opaquePorts", "proxy.resources", "proxy.runtime", "proxy.await",
		"proxy.nativeSidecar", "proxy.defaultInboundPolicy", "proxy.outboundConnectTimeout",
		"proxy.inboundConnectTimeout", "proxy.shutdownGracePeriod", "proxy.waitBeforeExitSeconds",
		"proxy.enableExternalProfiles", "proxy.accessLog", "proxy.requireIdentityOnInboundPorts",
		"proxyInit.image", "proxyInit.ignoreInboundPorts", "proxyInit.ignoreOutboundPorts",
		"proxyInit.skipSubnets", "proxyInit.runAsRoot", "proxyInit.runAsUser", "proxyInit.runAsGroup",
		"proxyInit.iptablesMode", "debugContainer.image",
	} {
		if x := pick(p); x != nil {
			defaults[p] = x
		}
	}
	proxyVersion, _ := pick("proxy.image.version").(string)
	if proxyVersion == "" {
		proxyVersion = v.LinkerdVersion
	}
	defaults["effective_proxy_version"] = proxyVersion
	defaults["values_file"] = "values.yaml in this directory: the exact linkerd-config values the injector read"
	nsDefaults := map[string]string{}
	for k, val := range defaultNamespaceAnnotations {
		nsDefaults[k] = val
	}
	meta := map[string]any{
		"mesh":            "linkerd",
		"release":         release,
		"source":          "github.com/linkerd/linkerd2 at tag " + release,
		"path_reproduced": "webhook: controller/proxy-injector Inject(linkerdNamespace, inject.GetOverriddenValues) on the Pod a workload creates (origin webhook)",
		"go_modules":      mods,
		"fixed": map[string]any{
			"control_plane_namespace":          controlPlaneNamespace,
			"cluster_domain":                   v.ClusterDomain,
			"identity_trust_domain":            v.IdentityTrustDomain,
			"trust_anchors_file":               filepath.Base(anchorsPath),
			"trust_anchors_sha256":             hex.EncodeToString(sum[:]),
			"version_ldflag":                   "github.com/linkerd/linkerd2/pkg/version.Version=" + release,
			"created_by_annotation":            "linkerd/proxy-injector " + release,
			"default_namespace":                defaultNamespace,
			"undeclared_namespace_annotations": nsDefaults,
			"namespace_labels_added":           "kubernetes.io/metadata.name=<name> (as the API server does)",
			"webhook_namespace_selector":       nsSel.String(),
			"webhook_object_selector":          objSel.String(),
			"admission_request":                "operation CREATE, kind v1 Pod; a workload is sent as the pod its controller creates (template metadata + spec, generateName, ownerReferences: Deployment via ReplicaSet <name>-reference, CronJob via Job <name>-reference, others directly), metadata.namespace filled in; the injected pod's metadata and spec are written back into the template",
		},
		"values_beyond_chart_defaults": map[string]any{
			"identityTrustAnchorsPEM": "contents of " + filepath.Base(anchorsPath),
			"identityTrustDomain":     v.IdentityTrustDomain + " (the linkerd-config template sets it to clusterDomain when empty)",
		},
		"defaults": defaults,
	}
	if len(sets) > 0 {
		meta["folder_values"] = map[string]map[string]any(sets)
	}
	b, err := yaml.Marshal(meta)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
