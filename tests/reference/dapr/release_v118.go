//go:build !dapr116 && !dapr117

package main

// Release-line specifics for Dapr 1.18+ (built without the dapr116 and dapr117 tags).

import (
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/dapr/dapr/pkg/injector/annotations"
	"github.com/dapr/dapr/pkg/injector/patcher"
)

const releaseLine = "v1.18"

// handlerGate: from 1.18 the handler lets a pod through untouched, before any
// other work, unless dapr.io/enabled equals "true" ignoring case.
func handlerGate(pod *corev1.Pod) (string, bool) {
	if !strings.EqualFold(pod.Annotations[annotations.KeyEnabled], "true") {
		return `skipped by the webhook handler: dapr.io/enabled is not "true" (compared ignoring case); Dapr allows the pod unchanged, no message`, false
	}
	return "", true
}

func setReleaseFields(sc *patcher.SidecarConfig, in *injector) {
	sc.KubeClusterDomain = in.cfg.KubeClusterDomain
	sc.SchedulerEnabled = in.chart.SchedulerOn
	sc.EnableNativeSidecar = in.cfg.GetNativeSidecarEnabled()
}

func setSchedulerBeforeAnnotations(*patcher.SidecarConfig, *injector) {}

func releaseMeta(in *injector) map[string]any {
	return map[string]any{
		"injector_flag_scheduler_enabled": in.chart.SchedulerOn,
		"native_sidecar_enabled":          in.cfg.GetNativeSidecarEnabled(),
	}
}
