// Package deploy holds the files that run certsweep on a schedule: a
// container image (Dockerfile), Kubernetes manifests (kubernetes/: an
// Indexed Job of sweep shards, its weekly CronJob, the merge step and the
// inventory's volume) and a systemd service and timer (systemd/). It has
// no code; its tests check those files, so a manifest that Kubernetes
// would reject, or one that disagrees with another, fails `make test`.
package deploy
