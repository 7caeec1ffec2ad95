// kube-validate checks Kubernetes manifests offline against the API types of the Kubernetes
// version this module pins (k8s.io/api in go.mod), so a typo or a wrong type fails in CI rather
// than at `kubectl apply`:
//
//   - strict decoding through the client-go scheme: unknown fields, duplicate fields and wrong
//     types are errors, and so is a kind or apiVersion that version does not serve;
//   - API lifecycle: an apiVersion deprecated or removed at the target version is an error;
//   - a few rules the API server enforces that types alone cannot (names, labels, selectors that
//     match their pod template, volume mounts that name a volume, requests ≤ limits, …).
//
// Usage:
//
//	kube-validate [-kube-version 1.37] [-json] FILE...    multi-document YAML; "-" reads stdin
//	kube-validate -kustomize DIR [-json]                  builds a kustomization in-process, then validates it
//	kube-validate -yaml [-schema FILE.json] FILE          any YAML (duplicate keys refused) → JSON on stdout,
//	                                                      validated against a JSON schema when given
//
// With -json the validated objects are printed as one JSON array (the policy tests read it).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

func main() {
	kubeVersion := flag.String("kube-version", defaultKubeVersion(), "Kubernetes minor version to validate for (default: the pinned k8s.io/api)")
	asJSON := flag.Bool("json", false, "print the validated objects as one JSON array")
	kustomizeDir := flag.String("kustomize", "", "build this kustomization directory and validate the result")
	plainYAML := flag.Bool("yaml", false, "convert one YAML file to JSON (no Kubernetes checks)")
	schemaFile := flag.String("schema", "", "with -yaml: validate against this JSON schema")
	flag.Parse()

	if *plainYAML {
		if flag.NArg() != 1 {
			fail("-yaml takes exactly one file")
		}
		if err := yamlToJSON(flag.Arg(0), *schemaFile, os.Stdout); err != nil {
			fail(err.Error())
		}
		return
	}

	major, minor, err := parseMinor(*kubeVersion)
	if err != nil {
		fail(err.Error())
	}
	v := &validator{major: major, minor: minor}
	codec := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, kjson.SerializerOptions{Strict: true})
	v.codec = codec

	var sources []source
	if *kustomizeDir != "" {
		k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
		m, err := k.Run(filesys.MakeFsOnDisk(), *kustomizeDir)
		if err != nil {
			fail(fmt.Sprintf("kustomize build %s: %v", *kustomizeDir, err))
		}
		out, err := m.AsYaml()
		if err != nil {
			fail(err.Error())
		}
		sources = append(sources, source{name: *kustomizeDir + " (kustomize build)", data: out})
	}
	for _, f := range flag.Args() {
		var data []byte
		if f == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			fail(err.Error())
		}
		sources = append(sources, source{name: f, data: data})
	}
	if len(sources) == 0 {
		fail("nothing to validate: give files, - for stdin, or -kustomize DIR")
	}

	var objects []json.RawMessage
	for _, s := range sources {
		objects = append(objects, v.validateStream(s)...)
	}
	if v.errors > 0 {
		fmt.Fprintf(os.Stderr, "kube-validate: %d error(s) in %d object(s) (Kubernetes %d.%d)\n", v.errors, v.objects, major, minor)
		os.Exit(1)
	}
	if *asJSON {
		if objects == nil {
			objects = []json.RawMessage{}
		}
		out, _ := json.Marshal(objects)
		os.Stdout.Write(append(out, '\n'))
	} else {
		fmt.Fprintf(os.Stderr, "kube-validate: %d object(s) valid for Kubernetes %d.%d\n", v.objects, major, minor)
	}
}

type source struct {
	name string
	data []byte
}

type validator struct {
	major, minor int
	codec        runtime.Decoder
	errors       int
	objects      int
}

func (v *validator) report(where, msg string) {
	v.errors++
	fmt.Fprintf(os.Stderr, "%s: %s\n", where, msg)
}

func (v *validator) validateStream(s source) []json.RawMessage {
	var out []json.RawMessage
	r := kyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(s.data)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			v.report(fmt.Sprintf("%s#%d", s.name, i), err.Error())
			return out
		}
		if isEmptyDoc(doc) {
			continue
		}
		where := fmt.Sprintf("%s#%d", s.name, i)
		// YAMLToJSONStrict refuses duplicate keys, which plain YAML decoding silently merges.
		js, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			v.report(where, err.Error())
			continue
		}
		v.objects++
		if ok := v.validateObject(where, js); ok {
			out = append(out, js)
		}
	}
}

func isEmptyDoc(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") && t != "---" {
			return false
		}
	}
	return true
}

type lifecycle interface {
	APILifecycleDeprecated() (major, minor int)
	APILifecycleRemoved() (major, minor int)
}

func (v *validator) validateObject(where string, js []byte) bool {
	before := v.errors
	obj, gvk, err := v.codec.Decode(js, nil, nil)
	if gvk != nil && gvk.Kind != "" {
		var meta struct {
			Metadata struct{ Name string } `json:"metadata"`
		}
		_ = json.Unmarshal(js, &meta)
		where = fmt.Sprintf("%s (%s %s/%s)", where, gvk.GroupVersion(), gvk.Kind, meta.Metadata.Name)
	}
	if err != nil {
		// Strict decoding errors (unknown or duplicate fields) come back with a usable object.
		if !runtime.IsStrictDecodingError(err) || obj == nil {
			v.report(where, err.Error())
			return false
		}
		for _, e := range err.(interface{ Errors() []error }).Errors() {
			v.report(where, e.Error())
		}
	}
	if lc, ok := obj.(lifecycle); ok {
		if maj, min := lc.APILifecycleRemoved(); maj != 0 && !v.before(maj, min) {
			v.report(where, fmt.Sprintf("%s is removed in Kubernetes %d.%d", gvk.GroupVersion(), maj, min))
		} else if maj, min := lc.APILifecycleDeprecated(); maj != 0 && !v.before(maj, min) {
			v.report(where, fmt.Sprintf("%s is deprecated since Kubernetes %d.%d", gvk.GroupVersion(), maj, min))
		}
	}
	for _, e := range semanticErrors(obj) {
		v.report(where, e.Error())
	}
	return v.errors == before
}

// before reports whether the target version is older than major.minor.
func (v *validator) before(major, minor int) bool {
	return v.major < major || (v.major == major && v.minor < minor)
}

// semanticErrors holds the API server's own checks that the types cannot express, for the kinds
// this project renders.
func semanticErrors(obj runtime.Object) field.ErrorList {
	var errs field.ErrorList
	if accessor, ok := obj.(metav1.Object); ok {
		errs = append(errs, objectMetaErrors(obj, accessor)...)
	}
	workload := func(selector *metav1.LabelSelector, tpl *corev1.PodTemplateSpec, claims ...string) {
		p := field.NewPath("spec")
		errs = append(errs, selectorMatches(selector, tpl.Labels, p)...)
		errs = append(errs, metav1validation.ValidateLabels(tpl.Labels, p.Child("template", "metadata", "labels"))...)
		errs = append(errs, podSpecErrors(&tpl.Spec, p.Child("template", "spec"), claims...)...)
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		workload(o.Spec.Selector, &o.Spec.Template)
	case *appsv1.StatefulSet:
		var claims []string
		for _, c := range o.Spec.VolumeClaimTemplates {
			claims = append(claims, c.Name)
		}
		workload(o.Spec.Selector, &o.Spec.Template, claims...)
		if o.Spec.ServiceName != "" {
			for _, m := range validation.IsDNS1123Label(o.Spec.ServiceName) {
				errs = append(errs, field.Invalid(field.NewPath("spec", "serviceName"), o.Spec.ServiceName, m))
			}
		}
	case *appsv1.DaemonSet:
		workload(o.Spec.Selector, &o.Spec.Template)
	case *batchv1.Job:
		errs = append(errs, podSpecErrors(&o.Spec.Template.Spec, field.NewPath("spec", "template", "spec"))...)
		if rp := o.Spec.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyNever && rp != corev1.RestartPolicyOnFailure {
			errs = append(errs, field.NotSupported(field.NewPath("spec", "template", "spec", "restartPolicy"), rp, []string{"Never", "OnFailure"}))
		}
	case *corev1.Pod:
		errs = append(errs, podSpecErrors(&o.Spec, field.NewPath("spec"))...)
	case *corev1.Service:
		errs = append(errs, metav1validation.ValidateLabels(o.Spec.Selector, field.NewPath("spec", "selector"))...)
		seen := map[string]bool{}
		for i, port := range o.Spec.Ports {
			p := field.NewPath("spec", "ports").Index(i)
			if len(o.Spec.Ports) > 1 && port.Name == "" {
				errs = append(errs, field.Required(p.Child("name"), "every port of a multi-port Service needs a name"))
			}
			if seen[port.Name] {
				errs = append(errs, field.Duplicate(p.Child("name"), port.Name))
			}
			seen[port.Name] = true
			if port.TargetPort.Type == intstr.String {
				for _, m := range validation.IsValidPortName(port.TargetPort.StrVal) {
					errs = append(errs, field.Invalid(p.Child("targetPort"), port.TargetPort.StrVal, m))
				}
			}
		}
	case *autoscalingv2.HorizontalPodAutoscaler:
		if o.Spec.MinReplicas != nil && *o.Spec.MinReplicas > o.Spec.MaxReplicas {
			errs = append(errs, field.Invalid(field.NewPath("spec", "minReplicas"), *o.Spec.MinReplicas, "must be ≤ maxReplicas"))
		}
		if o.Spec.ScaleTargetRef.Name == "" || o.Spec.ScaleTargetRef.Kind == "" {
			errs = append(errs, field.Required(field.NewPath("spec", "scaleTargetRef"), "kind and name"))
		}
	case *policyv1.PodDisruptionBudget:
		if o.Spec.MinAvailable != nil && o.Spec.MaxUnavailable != nil {
			errs = append(errs, field.Invalid(field.NewPath("spec"), "", "minAvailable and maxUnavailable cannot both be set"))
		}
		if o.Spec.Selector == nil {
			errs = append(errs, field.Required(field.NewPath("spec", "selector"), "a PodDisruptionBudget without a selector selects nothing"))
		}
	}
	return errs
}

func objectMetaErrors(obj runtime.Object, m metav1.Object) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("metadata")
	name := m.GetName()
	if name == "" && m.GetGenerateName() == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	} else if name != "" {
		check := validation.IsDNS1123Subdomain
		switch obj.(type) {
		case *corev1.Service, *corev1.Namespace:
			check = validation.IsDNS1035Label
		}
		for _, msg := range check(name) {
			errs = append(errs, field.Invalid(p.Child("name"), name, msg))
		}
	}
	errs = append(errs, metav1validation.ValidateLabels(m.GetLabels(), p.Child("labels"))...)
	errs = append(errs, apivalidation.ValidateAnnotations(m.GetAnnotations(), p.Child("annotations"))...)
	return errs
}

func selectorMatches(sel *metav1.LabelSelector, podLabels map[string]string, p *field.Path) field.ErrorList {
	if sel == nil {
		return field.ErrorList{field.Required(p.Child("selector"), "")}
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return field.ErrorList{field.Invalid(p.Child("selector"), sel, err.Error())}
	}
	if s.Empty() {
		return field.ErrorList{field.Invalid(p.Child("selector"), sel, "empty selector is invalid for a workload")}
	}
	if !s.Matches(labels.Set(podLabels)) {
		return field.ErrorList{field.Invalid(p.Child("template", "metadata", "labels"), podLabels, "`selector` does not match template `labels`")}
	}
	return nil
}

// podSpecErrors checks a pod spec; claims are a StatefulSet's volumeClaimTemplates, which also
// back volume mounts.
func podSpecErrors(spec *corev1.PodSpec, p *field.Path, claims ...string) field.ErrorList {
	var errs field.ErrorList
	volumes := map[string]bool{}
	for _, c := range claims {
		volumes[c] = true
	}
	for i, vol := range spec.Volumes {
		if volumes[vol.Name] {
			errs = append(errs, field.Duplicate(p.Child("volumes").Index(i).Child("name"), vol.Name))
		}
		volumes[vol.Name] = true
		for _, m := range validation.IsDNS1123Label(vol.Name) {
			errs = append(errs, field.Invalid(p.Child("volumes").Index(i).Child("name"), vol.Name, m))
		}
	}
	names := map[string]bool{}
	check := func(c *corev1.Container, cp *field.Path) {
		if names[c.Name] {
			errs = append(errs, field.Duplicate(cp.Child("name"), c.Name))
		}
		names[c.Name] = true
		for _, m := range validation.IsDNS1123Label(c.Name) {
			errs = append(errs, field.Invalid(cp.Child("name"), c.Name, m))
		}
		if c.Image == "" {
			errs = append(errs, field.Required(cp.Child("image"), ""))
		}
		for i, port := range c.Ports {
			if port.Name != "" {
				for _, m := range validation.IsValidPortName(port.Name) {
					errs = append(errs, field.Invalid(cp.Child("ports").Index(i).Child("name"), port.Name, m))
				}
			}
			for _, m := range validation.IsValidPortNum(int(port.ContainerPort)) {
				errs = append(errs, field.Invalid(cp.Child("ports").Index(i).Child("containerPort"), port.ContainerPort, m))
			}
		}
		for i, env := range c.Env {
			for _, m := range validation.IsEnvVarName(env.Name) {
				errs = append(errs, field.Invalid(cp.Child("env").Index(i).Child("name"), env.Name, m))
			}
		}
		for i, vm := range c.VolumeMounts {
			if !volumes[vm.Name] {
				errs = append(errs, field.NotFound(cp.Child("volumeMounts").Index(i).Child("name"), vm.Name))
			}
			if !strings.HasPrefix(vm.MountPath, "/") {
				errs = append(errs, field.Invalid(cp.Child("volumeMounts").Index(i).Child("mountPath"), vm.MountPath, "must be absolute"))
			}
		}
		for res, limit := range c.Resources.Limits {
			if req, ok := c.Resources.Requests[res]; ok && req.Cmp(limit) > 0 {
				errs = append(errs, field.Invalid(cp.Child("resources", "requests").Key(string(res)), req.String(), "must be less than or equal to "+string(res)+" limit of "+limit.String()))
			}
		}
	}
	for i := range spec.InitContainers {
		check(&spec.InitContainers[i], p.Child("initContainers").Index(i))
	}
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), ""))
	}
	for i := range spec.Containers {
		check(&spec.Containers[i], p.Child("containers").Index(i))
	}
	if spec.ServiceAccountName != "" {
		for _, m := range validation.IsDNS1123Subdomain(spec.ServiceAccountName) {
			errs = append(errs, field.Invalid(p.Child("serviceAccountName"), spec.ServiceAccountName, m))
		}
	}
	return errs
}

func yamlToJSON(file, schemaFile string, w io.Writer) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if schemaFile != "" {
		c := jsonschema.NewCompiler()
		sch, err := c.Compile(schemaFile)
		if err != nil {
			return fmt.Errorf("%s: %w", schemaFile, err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
		if err != nil {
			return err
		}
		if err := sch.Validate(inst); err != nil {
			return fmt.Errorf("%s does not match %s:\n%v", file, schemaFile, err)
		}
	}
	_, err = w.Write(append(js, '\n'))
	return err
}

// defaultKubeVersion is the minor version of the pinned k8s.io/api module (v0.37.x → 1.37).
func defaultKubeVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "k8s.io/api" {
				parts := strings.Split(strings.TrimPrefix(dep.Version, "v"), ".")
				if len(parts) >= 2 {
					return "1." + parts[1]
				}
			}
		}
	}
	return ""
}

func parseMinor(v string) (int, int, error) {
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("-kube-version %q: want MAJOR.MINOR", v)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("-kube-version %q: want MAJOR.MINOR", v)
	}
	return major, minor, nil
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "kube-validate:", msg)
	os.Exit(2)
}
