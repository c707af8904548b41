package main

// One admission review, as Dapr's sidecar-injector service handles it:
// the handler's gate, then the SidecarConfig the service builds from its own
// settings before the pod's annotations are applied, then the patcher's
// GetPatch. Step order and inputs follow pkg/injector/service/pod_patch.go
// and handler.go of the release; the Dapr code does the actual work.

import (
	"encoding/json"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"

	componentsapi "github.com/dapr/dapr/pkg/apis/components/v1alpha1"
	injectorConsts "github.com/dapr/dapr/pkg/injector/consts"
	"github.com/dapr/dapr/pkg/injector/patcher"
	"github.com/dapr/dapr/pkg/injector/service"
)

type injector struct {
	cfg          service.Config
	chart        *chartSettings
	ctrlNS       string
	trustDomain  string
	sentryID     string
	trustAnchors []byte
	mtls         bool
}

// outcome of one review: a patch, or a reason why the pod is left as it is.
type outcome struct {
	patch   jsonpatch.Patch
	skipped string // Dapr allowed the pod unchanged
	refused string // Dapr answered with an error (allowed: false)
}

func (in *injector) review(podJSON []byte, namespace string) outcome {
	pod := &corev1.Pod{}
	if err := json.Unmarshal(podJSON, pod); err != nil {
		return outcome{refused: fmt.Sprintf("could not unmarshal raw object: %v", err)}
	}
	if why, ok := handlerGate(pod); !ok {
		return outcome{skipped: why}
	}

	sc := patcher.NewSidecarConfig(pod)
	// No Component objects exist in the reference cluster.
	sc.GetInjectedComponentContainers = func(appID, _ string) ([]corev1.Container, error) {
		return patcher.Injectable(appID, []componentsapi.Component{}), nil
	}
	sc.Mode = injectorConsts.ModeKubernetes
	sc.Namespace = namespace
	sc.MTLSEnabled = in.mtls
	sc.Identity = namespace + ":" + pod.Spec.ServiceAccountName
	sc.IgnoreEntrypointTolerations = in.cfg.GetIgnoreEntrypointTolerations()
	sc.ImagePullPolicy = in.cfg.GetPullPolicy()
	sc.OperatorAddress = patcher.ServiceAPI.Address(in.cfg.Namespace, in.cfg.KubeClusterDomain)
	sc.SentryAddress = patcher.ServiceSentry.Address(in.cfg.Namespace, in.cfg.KubeClusterDomain)
	sc.RunAsNonRoot = in.cfg.GetRunAsNonRoot()
	sc.RunAsUser = in.cfg.GetRunAsUser()
	sc.RunAsGroup = in.cfg.GetRunAsGroup()
	sc.ReadOnlyRootFilesystem = in.cfg.GetReadOnlyRootFilesystem()
	sc.EnableK8sDownwardAPIs = in.cfg.GetEnableK8sDownwardAPIs()
	sc.SidecarDropALLCapabilities = in.cfg.GetDropCapabilities()
	sc.ControlPlaneNamespace = in.ctrlNS
	sc.ControlPlaneTrustDomain = in.trustDomain
	sc.SentrySPIFFEID = in.sentryID
	sc.CurrentTrustAnchors = in.trustAnchors
	// The injector pod has a service account token mounted, so the
	// projected sentry token volume is always added in a cluster.
	sc.DisableTokenVolume = false
	setReleaseFields(sc, in)

	// Actors: placement by default, unless disabled or another actors service is configured.
	switch {
	case !in.cfg.GetActorsEnabled():
		sc.ActorsService = ""
		sc.PlacementAddress = ""
	case sc.PlacementAddress == "":
		name, svc := in.cfg.GetActorsService()
		addr := svc.Address(in.cfg.Namespace, in.cfg.KubeClusterDomain)
		if name == "placement" {
			sc.ActorsService = ""
			sc.PlacementAddress = addr
		} else {
			sc.ActorsService = name + ":" + addr
		}
	default:
		sc.ActorsService = ""
	}
	if name, svc, ok := in.cfg.GetRemindersService(); ok {
		sc.RemindersService = name + ":" + svc.Address(in.cfg.Namespace, in.cfg.KubeClusterDomain)
	}
	setSchedulerBeforeAnnotations(sc, in)

	sc.SidecarImage = in.cfg.SidecarImage
	sc.SetFromPodAnnotations()

	patch, err := sc.GetPatch()
	if err != nil {
		return outcome{refused: err.Error()}
	}
	if len(patch) == 0 {
		if !sc.Enabled {
			return outcome{skipped: "no patch: dapr.io/enabled is absent or not truthy (Dapr allows the pod unchanged, no message)"}
		}
		return outcome{skipped: "no patch: the pod already has a container named daprd (Dapr allows the pod unchanged, no message)"}
	}
	return outcome{patch: patch}
}
