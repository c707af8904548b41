//go:build !dapr116

package main

// The webhook handler's gate from 1.17.3 on (the 1.17 goldens are of 1.17.13) and in 1.18: a pod
// goes through untouched, before any other work, unless dapr.io/enabled equals "true" ignoring case.

import (
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/dapr/dapr/pkg/injector/annotations"
)

func handlerGate(pod *corev1.Pod) (string, bool) {
	if !strings.EqualFold(pod.Annotations[annotations.KeyEnabled], "true") {
		return `skipped by the webhook handler: dapr.io/enabled is not "true" (compared ignoring case); Dapr allows the pod unchanged, no message`, false
	}
	return "", true
}
