//go:build !dapr116 && !dapr117

package main

// Release-line specifics for Dapr 1.18+ (built without the dapr116 and dapr117 tags).

import (
	"github.com/dapr/dapr/pkg/injector/patcher"
)

const releaseLine = "v1.18"

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
