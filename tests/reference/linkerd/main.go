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
		verbosity = flag.String("log-level", "error", "logrus level of the injector's own logs")
	)
	flag.Var(&inputs, "in", "LABEL=DIR: render every DIR/*.yaml into OUT/LABEL/ (repeatable)")
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
	if err := writeMeta(filepath.Join(*outDir, "meta.yaml"), *releaseV, *anchors, anchorsPEM, valuesYAML, values, nsSel, objSel); err != nil {
		fatalf("%v", err)
	}
	fmt.Fprintf(os.Stderr, "linkerd-reference %s: %d files, %d documents, %d injected, %d skipped or passed through\n",
		*releaseV, count, r.docs, r.injected, r.docs-r.injected)
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

	// The request object carries metadata.namespace, as the API server fills it before
	// admission; the patch is applied to the input object as written.
	reqObj, err := json.Marshal(obj)
	if err != nil {
		return nil, "", err
	}
	var withNS map[string]any
	_ = json.Unmarshal(reqObj, &withNS)
	if md, ok := withNS["metadata"].(map[string]any); ok {
		md["namespace"] = ns
	} else {
		withNS["metadata"] = map[string]any{"namespace": ns}
	}
	raw, err := json.Marshal(withNS)
	if err != nil {
		return nil, "", err
	}
	group, ver, _ := strings.Cut(str(obj, "apiVersion"), "/")
	if ver == "" {
		group, ver = "", group
	}
	req := &admissionv1beta1.AdmissionRequest{
		UID:       types.UID("meshswitch-reference"),
		Kind:      metav1.GroupVersionKind{Group: group, Version: ver, Kind: kind},
		Namespace: ns,
		Operation: admissionv1beta1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}
	resp, err := r.handler(context.Background(), api, req, record.NewFakeRecorder(100))
	if err != nil {
		return nil, "", fmt.Errorf("injector error: %w", err)
	}

	// Why it was (not) injected, from the same report the handler builds.
	conf := inject.NewResourceConfig(r.values, inject.OriginWebhook, controlPlaneNamespace).
		WithNsAnnotations(info.annotations).
		WithKind(kind)
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
	} else {
		r.injected++
	}

	if len(resp.Patch) == 0 {
		return obj, reason, nil
	}
	patch, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		return nil, "", fmt.Errorf("decoding the injector's patch: %w (%s)", err, resp.Patch)
	}
	patched, err := patch.Apply(reqObj)
	if err != nil {
		return nil, "", fmt.Errorf("applying the injector's patch: %w (%s)", err, resp.Patch)
	}
	var res map[string]any
	if err := json.Unmarshal(patched, &res); err != nil {
		return nil, "", err
	}
	return res, reason, nil
}

func writeMeta(path, release, anchorsPath string, anchorsPEM, valuesYAML []byte, v *linkerd2.Values, nsSel, objSel labels.Selector) error {
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
		"linkerdVersion", "clusterDomain", "clusterNetworks", "cniEnabled", "imagePullPolicy",
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
		"path_reproduced": "webhook: controller/proxy-injector Inject(linkerdNamespace, inject.GetOverriddenValues), origin webhook",
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
			"admission_request":                "operation CREATE, kind = the document's kind, object with metadata.namespace filled in",
		},
		"values_beyond_chart_defaults": map[string]any{
			"identityTrustAnchorsPEM": "contents of " + filepath.Base(anchorsPath),
			"identityTrustDomain":     v.IdentityTrustDomain + " (the linkerd-config template sets it to clusterDomain when empty)",
		},
		"defaults": defaults,
	}
	b, err := yaml.Marshal(meta)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
