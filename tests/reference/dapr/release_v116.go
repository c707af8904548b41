//go:build dapr116

package main

// Release-line specifics for Dapr 1.16 (built with the dapr116 tag).

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/dapr/dapr/pkg/injector/patcher"
)

const releaseLine = "v1.16"

// handlerGate: the 1.16 handler has no early dapr.io/enabled check; the
// patcher decides (truthy value, no daprd container yet).
func handlerGate(*corev1.Pod) (string, bool) { return "", true }

func setReleaseFields(sc *patcher.SidecarConfig, in *injector) {
	sc.SkipReminderMigration = in.cfg.SkipReminderMigration
}

// In 1.16 the service lists every scheduler replica (it reads the
// dapr-scheduler-server StatefulSet's replica count at start) and the
// headless "-a" address, before the pod's annotations are applied.
func setSchedulerBeforeAnnotations(sc *patcher.SidecarConfig, in *injector) {
	if sc.SchedulerAddress != "" {
		return
	}
	all := patcher.ServiceScheduler.AddressAllInstances(in.chart.SchedulerReps, in.cfg.Namespace, in.cfg.KubeClusterDomain)
	sc.SchedulerAddress = strings.Join(all, ",")
	if len(all) > 0 {
		sc.SchedulerAddressDNSA = fmt.Sprintf("dapr-scheduler-server-a.%s.svc.%s:443", in.ctrlNS, in.cfg.KubeClusterDomain)
	}
}

func releaseMeta(in *injector) map[string]any {
	return map[string]any{
		"scheduler_statefulset_replicas": in.chart.SchedulerReps,
		"skip_reminder_migration":        in.cfg.SkipReminderMigration,
	}
}
