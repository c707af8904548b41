//go:build dapr117

package main

// Release-line specifics for Dapr 1.17 (built with the dapr117 tag): 1.18's shape without the
// native sidecar; the handler gate of 1.18 (release_gate.go), from 1.17.3 (the goldens are of 1.17.13).

import (
	"github.com/dapr/dapr/pkg/injector/patcher"
)

const releaseLine = "v1.17"

func setReleaseFields(sc *patcher.SidecarConfig, in *injector) {
	sc.KubeClusterDomain = in.cfg.KubeClusterDomain
	sc.SchedulerEnabled = in.chart.SchedulerOn
}

func setSchedulerBeforeAnnotations(*patcher.SidecarConfig, *injector) {}

func releaseMeta(in *injector) map[string]any {
	return map[string]any{
		"injector_flag_scheduler_enabled": in.chart.SchedulerOn,
	}
}
