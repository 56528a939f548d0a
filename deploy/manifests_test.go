package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// manifest is one decoded document of a file under kubernetes/.
type manifest struct {
	file string
	obj  runtime.Object
}

// strictDecoder decodes the kinds the manifests may use the way the API
// server does in strict mode: an unknown or duplicated field, or a field
// in the wrong case, is an error, not silently dropped.
func strictDecoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := errors.Join(corev1.AddToScheme(scheme), batchv1.AddToScheme(scheme)); err != nil {
		t.Fatal(err)
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}

// decodeAll splits a YAML stream into documents and decodes each strictly.
func decodeAll(dec runtime.Decoder, data []byte) ([]runtime.Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []runtime.Object
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := dec.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		out = append(out, obj)
	}
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for l := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			b.Write(l)
		}
	}
	return b.Bytes()
}

func loadManifests(t *testing.T) []manifest {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in kubernetes/ (%v)", err)
	}
	dec := strictDecoder(t)
	var out []manifest
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeAll(dec, data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(objs) == 0 {
			t.Errorf("%s holds no object", f)
		}
		for _, o := range objs {
			out = append(out, manifest{f, o})
		}
	}
	return out
}

// TestManifestsDecodeStrictly decodes every manifest into the k8s.io/api
// types (unknown fields fail), and shows that the decoder is strict: the
// same manifests with a misspelt or unknown field are refused.
func TestManifestsDecodeStrictly(t *testing.T) {
	ms := loadManifests(t)
	kinds := map[string]int{}
	for _, m := range ms {
		kinds[fmt.Sprintf("%T", m.obj)]++
	}
	for _, want := range []string{"*v1.Namespace", "*v1.PersistentVolumeClaim", "*v1.ConfigMap", "*v1.Job", "*v1.CronJob"} {
		if kinds[want] == 0 {
			t.Errorf("no %s among the manifests (have %v)", want, kinds)
		}
	}

	job, err := os.ReadFile("kubernetes/sweep-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := strictDecoder(t)
	for _, bad := range []struct{ from, to string }{
		{"  completions: 4\n", "  completions: 4\n  completionz: 4\n"},                 // unknown field
		{"  parallelism: 4\n", "  Parallelism: 4\n"},                                   // wrong case
		{"  completions: 4\n", "  completions: 4\n  completions: 5\n"},                 // duplicate
		{"readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true"},               // a classic typo
		{"        - name: sweep\n", "        - name: sweep\n          runAsUser: 1\n"}, // a pod field in a container
	} {
		text := strings.Replace(string(job), bad.from, bad.to, 1)
		if text == string(job) {
			t.Fatalf("sweep-job.yaml no longer contains %q: update this test", bad.from)
		}
		if _, err := decodeAll(dec, []byte(text)); err == nil {
			t.Errorf("sweep-job.yaml with %q instead of %q decoded without error: the decoder is not strict", bad.to, bad.from)
		}
	}
}

// flags reads a certsweep command line: the command, its --name=value
// flags and its positional arguments.
func flags(args []string) (cmd string, fl map[string]string, pos []string) {
	fl = map[string]string{}
	for i, a := range args {
		switch {
		case i == 0:
			cmd = a
		case strings.HasPrefix(a, "--"):
			k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			fl[k] = v
		default:
			pos = append(pos, a)
		}
	}
	return cmd, fl, pos
}

// podOf is a manifest's pod template, with the Job spec that runs it.
type podOf struct {
	where string
	job   *batchv1.JobSpec
	pod   *corev1.PodSpec
}

func pods(ms []manifest) []podOf {
	var out []podOf
	for _, m := range ms {
		switch o := m.obj.(type) {
		case *batchv1.Job:
			out = append(out, podOf{m.file + " Job " + o.GenerateName + o.Name, &o.Spec, &o.Spec.Template.Spec})
		case *batchv1.CronJob:
			out = append(out, podOf{m.file + " CronJob " + o.Name, &o.Spec.JobTemplate.Spec, &o.Spec.JobTemplate.Spec.Template.Spec})
		}
	}
	return out
}

func containers(p *corev1.PodSpec) []corev1.Container {
	return append(slices.Clone(p.InitContainers), p.Containers...)
}

// mountOf returns the volume of p mounted at the directory holding file in
// container c, or nil.
func mountOf(p *corev1.PodSpec, c corev1.Container, file string) *corev1.Volume {
	for _, vm := range c.VolumeMounts {
		if path.Dir(file) == path.Clean(vm.MountPath) {
			for i := range p.Volumes {
				if p.Volumes[i].Name == vm.Name {
					return &p.Volumes[i]
				}
			}
		}
	}
	return nil
}

var shardArg = regexp.MustCompile(`^auto/([0-9]+)$`)

// TestManifestsAgree checks what makes the manifests work together: the
// shard count, the files each step reads and writes, the volumes behind
// them, the image, the schedule, and the restricted security context.
func TestManifestsAgree(t *testing.T) {
	ms := loadManifests(t)
	var ns string
	claims, configMaps := map[string]bool{}, map[string]map[string]string{}
	var sweepJob, sweepCron *batchv1.JobSpec
	var sweepSchedule, mergeSchedule *batchv1.CronJob
	for _, m := range ms {
		switch o := m.obj.(type) {
		case *corev1.Namespace:
			ns = o.Name
			if o.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
				t.Errorf("%s: namespace %s does not enforce the restricted Pod Security Standard", m.file, o.Name)
			}
		case *corev1.PersistentVolumeClaim:
			claims[o.Name] = true
		case *corev1.ConfigMap:
			configMaps[o.Name] = o.Data
		case *batchv1.Job:
			sweepJob = &o.Spec
		case *batchv1.CronJob:
			if o.Spec.JobTemplate.Spec.CompletionMode != nil {
				sweepSchedule, sweepCron = o, &o.Spec.JobTemplate.Spec
			} else {
				mergeSchedule = o
			}
		}
	}
	for _, m := range ms {
		if _, isNS := m.obj.(*corev1.Namespace); isNS {
			continue
		}
		if got := m.obj.(interface{ GetNamespace() string }).GetNamespace(); got != ns {
			t.Errorf("%s: %T in namespace %q, want %q (namespace.yaml)", m.file, m.obj, got, ns)
		}
	}
	if sweepJob == nil || sweepCron == nil || mergeSchedule == nil {
		t.Fatalf("want an Indexed Job, an Indexed CronJob (the weekly sweep) and a merge CronJob; have Job %v, sweep CronJob %v, merge CronJob %v",
			sweepJob != nil, sweepCron != nil, mergeSchedule != nil)
	}
	if !reflect.DeepEqual(sweepJob, sweepCron) {
		t.Errorf("the weekly CronJob's job template differs from sweep-job.yaml's spec: keep them one sweep")
	}

	images := map[string]bool{}
	var shardFiles []string // the databases the shards write, by index
	var shards int
	for _, p := range pods(ms) {
		if p.pod.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("%s: restartPolicy %q, want Never (a failed pod is retried by the Job, which counts it)", p.where, p.pod.RestartPolicy)
		}
		checkSecurity(t, p)
		for _, c := range containers(p.pod) {
			where := p.where + " container " + c.Name
			images[c.Image] = true
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: want CPU and memory requests and a memory limit", where)
			}
			cmd, fl, pos := flags(c.Args)
			// Every file named is on a volume: databases on the claim,
			// target lists in the ConfigMap.
			dbs := append([]string{fl["db"]}, pos...)
			for _, db := range dbs {
				v := mountOf(p.pod, c, db)
				if v == nil || v.PersistentVolumeClaim == nil || !claims[v.PersistentVolumeClaim.ClaimName] {
					t.Errorf("%s: database %s is not on a mounted PersistentVolumeClaim of the manifests", where, db)
				}
			}
			for _, key := range []string{"targets-file", "exclude-file"} {
				f, ok := fl[key]
				if !ok {
					continue
				}
				v := mountOf(p.pod, c, f)
				if v == nil || v.ConfigMap == nil {
					t.Errorf("%s: --%s %s is not in a mounted ConfigMap", where, key, f)
				} else if _, ok := configMaps[v.ConfigMap.Name][path.Base(f)]; !ok {
					t.Errorf("%s: --%s %s: ConfigMap %s has no key %s", where, key, f, v.ConfigMap.Name, path.Base(f))
				}
			}
			if fl["discovery"] != "connect" && cmd == "sweep" {
				t.Errorf("%s: --discovery %q: a restricted pod has no raw sockets, want connect (auto would say so on every run)", where, fl["discovery"])
			}
			if cmd != "sweep" || p.job.CompletionMode == nil {
				continue
			}
			// The sharded sweep.
			m := shardArg.FindStringSubmatch(fl["shard"])
			if m == nil {
				t.Errorf("%s: --shard %q, want auto/N (the index from JOB_COMPLETION_INDEX)", where, fl["shard"])
				continue
			}
			n, _ := strconv.Atoi(m[1])
			if *p.job.CompletionMode != batchv1.IndexedCompletion || p.job.Completions == nil || p.job.Parallelism == nil ||
				int(*p.job.Completions) != n || int(*p.job.Parallelism) != n {
				t.Errorf("%s: --shard auto/%d wants completionMode Indexed and completions = parallelism = %d", where, n, n)
			}
			if _, ok := fl["seed"]; !ok {
				t.Errorf("%s: a sharded sweep needs --seed (every shard must walk the same order)", where)
			}
			if !strings.Contains(fl["db"], "$(JOB_COMPLETION_INDEX)") {
				t.Errorf("%s: --db %s is the same file for every shard: name it after $(JOB_COMPLETION_INDEX)", where, fl["db"])
			}
			shards = n
			shardFiles = shardFiles[:0]
			for i := range n {
				shardFiles = append(shardFiles, strings.ReplaceAll(fl["db"], "$(JOB_COMPLETION_INDEX)", strconv.Itoa(i)))
			}
		}
	}
	if len(images) != 1 {
		t.Errorf("the manifests name %d images, want one: %v", len(images), images)
	}
	if shards < 2 {
		t.Fatalf("found no sweep of 2 or more shards")
	}

	// The merge pod merges exactly the shard files, then prunes each of
	// them, then prunes the inventory.
	mp := &mergeSchedule.Spec.JobTemplate.Spec.Template.Spec
	steps := containers(mp)
	if len(steps) == 0 {
		t.Fatalf("the merge CronJob runs no container")
	}
	cmd, mfl, mpos := flags(steps[0].Args)
	if len(mp.InitContainers) == 0 || cmd != "merge" {
		t.Fatalf("the merge CronJob's first step is %q, want merge as the first init container (nothing may prune before it succeeded)", cmd)
	}
	if !slices.Equal(mpos, shardFiles) {
		t.Errorf("merge reads %v, the %d shards write %v", mpos, shards, shardFiles)
	}
	pruned := map[string]string{}
	for _, c := range steps[1:] {
		cmd, fl, _ := flags(c.Args)
		if cmd != "prune" {
			t.Errorf("merge CronJob step %s runs %q, want prune", c.Name, cmd)
		}
		pruned[fl["db"]] = c.Name
	}
	for _, f := range append(slices.Clone(shardFiles), mfl["db"]) {
		if pruned[f] == "" {
			t.Errorf("the merge CronJob never prunes %s: sweeps pruned from the inventory would be merged back, or it grows without bound", f)
		}
	}
	if mfl["db"] == "" || slices.Contains(shardFiles, mfl["db"]) {
		t.Errorf("merge --db %q: want the inventory, not a shard file", mfl["db"])
	}

	// The merge runs after the sweep's deadline, on the same day.
	sm, sh, sd := cronTime(t, sweepSchedule.Spec.Schedule)
	mm, mh, md := cronTime(t, mergeSchedule.Spec.Schedule)
	deadline := int64(0)
	if sweepCron.ActiveDeadlineSeconds != nil {
		deadline = *sweepCron.ActiveDeadlineSeconds
	}
	if sd != md || deadline == 0 || int64(mh*3600+mm*60) < int64(sh*3600+sm*60)+deadline ||
		!reflect.DeepEqual(sweepSchedule.Spec.TimeZone, mergeSchedule.Spec.TimeZone) {
		t.Errorf("the merge (%q) must start after the sweep (%q) plus its activeDeadlineSeconds (%d), the same day and time zone",
			mergeSchedule.Spec.Schedule, sweepSchedule.Spec.Schedule, deadline)
	}
	for _, cj := range []*batchv1.CronJob{sweepSchedule, mergeSchedule} {
		if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Errorf("CronJob %s: concurrencyPolicy %q, want Forbid (two runs would write the same files)", cj.Name, cj.Spec.ConcurrencyPolicy)
		}
	}
}

// cronTime reads "M H * * D" (a fixed weekly time).
func cronTime(t *testing.T, s string) (minute, hour int, day string) {
	t.Helper()
	f := strings.Fields(s)
	if len(f) != 5 || f[2] != "*" || f[3] != "*" {
		t.Fatalf("schedule %q: want a weekly time, M H * * D", s)
	}
	m, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("schedule %q: want a fixed minute and hour", s)
	}
	return m, h, f[4]
}

// checkSecurity holds a pod to the restricted Pod Security Standard and
// to the image: a non-root numeric user (the Dockerfile's), no privilege
// escalation, every capability dropped, the default seccomp profile, a
// read-only root filesystem with a writable /tmp, no service account token.
func checkSecurity(t *testing.T, p podOf) {
	t.Helper()
	sc := p.pod.SecurityContext
	uid := dockerfileUser(t)
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != uid ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || sc.FSGroup == nil {
		t.Errorf("%s: want a pod securityContext with runAsNonRoot, runAsUser %d (the image's user), fsGroup and seccomp RuntimeDefault", p.where, uid)
	}
	if p.pod.AutomountServiceAccountToken == nil || *p.pod.AutomountServiceAccountToken {
		t.Errorf("%s: certsweep never talks to the API server: set automountServiceAccountToken: false", p.where)
	}
	for _, c := range containers(p.pod) {
		where := p.where + " container " + c.Name
		csc := c.SecurityContext
		if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
			csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
			csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) > 0 ||
			csc.Privileged != nil && *csc.Privileged {
			t.Errorf("%s: want allowPrivilegeEscalation false, readOnlyRootFilesystem true, capabilities drop [ALL] and none added", where)
		}
		tmp := false
		for _, vm := range c.VolumeMounts {
			tmp = tmp || vm.MountPath == "/tmp"
		}
		if !tmp || !slices.Contains(c.Env, corev1.EnvVar{Name: "TMPDIR", Value: "/tmp"}) {
			t.Errorf("%s: with a read-only root filesystem SQLite needs a writable TMPDIR: mount /tmp and set TMPDIR", where)
		}
	}
}

// dockerfileUser is the numeric user the image runs as.
func dockerfileUser(t *testing.T) int64 {
	t.Helper()
	st := dockerStages(t)
	last := st[len(st)-1]
	for i := len(last.lines) - 1; i >= 0; i-- {
		if u, ok := strings.CutPrefix(last.lines[i], "USER "); ok {
			uid, _, _ := strings.Cut(strings.TrimSpace(u), ":")
			n, err := strconv.ParseInt(uid, 10, 64)
			if err != nil {
				t.Fatalf("Dockerfile: USER %s: want a numeric user, so that runAsNonRoot can check it", u)
			}
			return n
		}
	}
	t.Fatalf("Dockerfile: the final stage sets no USER")
	return 0
}
