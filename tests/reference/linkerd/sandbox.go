package main

// The injector's handler reads its values and trust bundle from fixed paths under
// /var/run/linkerd (pkg/k8s MountPathValuesConfig and MountPathTrustRootsPEM), where the
// proxy-injector pod has them mounted. To drive the real handler without touching the
// machine, the program re-executes itself in a private mount namespace (a user namespace
// too when not root), mounts an empty tmpfs over /var/run there, and writes the two files
// into it. Nothing outside that namespace sees the tmpfs.

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	pkgK8s "github.com/linkerd/linkerd2/pkg/k8s"
)

const sandboxEnv = "MESHSWITCH_LINKERD_REFERENCE_SANDBOX"

// enterSandbox returns in the re-executed child, with /var/run replaced by a tmpfs; in
// the parent it waits for the child and exits with its status.
func enterSandbox() {
	if os.Getenv(sandboxEnv) == "1" {
		// Child: make every mount private first, so the tmpfs cannot propagate back.
		if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
			fatalf("making / private in the mount namespace: %v", err)
		}
		target, err := filepath.EvalSymlinks(filepath.Dir(pkgK8s.MountPathBase))
		if err != nil {
			fatalf("%v", err)
		}
		if err := syscall.Mount("tmpfs", target, "tmpfs", 0, "size=16m,mode=0755"); err != nil {
			fatalf("mounting a tmpfs on %s in the mount namespace: %v", target, err)
		}
		return
	}
	self, err := os.Executable()
	if err != nil {
		fatalf("%v", err)
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), sandboxEnv+"=1")
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	cmd.SysProcAttr = attr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		fatalf("starting the sandboxed child (needs mount namespaces: root, or unprivileged user namespaces): %v", err)
	}
	os.Exit(0)
}

// installMounts writes the files the proxy-injector pod has mounted.
func installMounts(valuesYAML, anchorsPEM []byte) error {
	if os.Getenv(sandboxEnv) != "1" {
		fatalf("refusing to write under %s outside the sandbox", pkgK8s.MountPathBase)
	}
	for path, data := range map[string][]byte{
		pkgK8s.MountPathValuesConfig:  valuesYAML,
		pkgK8s.MountPathTrustRootsPEM: anchorsPEM,
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
