# tests/vm/guest.sh: the VM's side of tests/vm/run, run by busybox sh as PID 1.
#
# tests/vm/run copies this file into the job directory, which the VM mounts
# over virtio-9p (mount tag "envrunjob"), so editing it needs no rebuild of
# the cached initramfs.  Two stages:
#
#   stage1  (in the initramfs; /init has loaded the modules and mounted the
#           job share at /job): the host's / read-only over 9p, a tmpfs
#           overlay on it, /proc /sys /dev /run inside, then switch_root.
#   stage2  (PID 1 in the new root): cgroup2 only at /sys/fs/cgroup, checks
#           that the VM is pure cgroup v2, runs the job's cmd.sh with stdout
#           on ttyS1 and stderr on ttyS2 (through pipes, so the command sees
#           no terminal), writes its status to the job directory, powers off.
#
# Anything that goes wrong before the command runs is reported with a line
# "ENVRUN-VM-FAIL <reason>" on the console (ttyS0) and in <job>/fail; the
# host then exits 125.  The command's status goes to <job>/status and to the
# console as "ENVRUN-VM-EXIT <status>".

bb=/bin/busybox
job=/job
if [ "$1" = stage2 ]; then
        bb=/run/envrun-vm/busybox
        job=/run/envrun-vm/job
fi

fail() {
        echo "ENVRUN-VM-FAIL $*" >/dev/console
        echo "$*" >"$job/fail"
        $bb sync
        $bb poweroff -f
        exit 1
}

stage1() {
        export PATH=/bin
        $bb mkdir -p /hostroot /rw /newroot
        # The host's root, read-only.  cache=loose: the guest caches what it
        # read (the host's files are not expected to change under a test).
        mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=262144,cache=loose \
                hostroot /hostroot || fail "cannot mount the host's root over 9p"
        mount -t tmpfs -o mode=0755 tmpfs /rw || fail "cannot mount the overlay's tmpfs"
        mkdir -p /rw/upper /rw/work
        mount -t overlay -o lowerdir=/hostroot,upperdir=/rw/upper,workdir=/rw/work \
                overlay /newroot || fail "cannot mount the overlay on the host's root"

        r=/newroot
        for d in proc sys dev run tmp; do
                [ -d "$r/$d" ] || mkdir -p "$r/$d" || fail "no /$d in the host's root"
        done
        mount --move /proc $r/proc || fail "cannot move /proc"
        mount --move /sys $r/sys || fail "cannot move /sys"
        mount --move /dev $r/dev || fail "cannot move /dev"
        mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs $r/run || fail "cannot mount /run"
        mkdir -p $r/run/envrun-vm/job $r/run/lock
        mount --move /job $r/run/envrun-vm/job || fail "cannot move the job share"
        cp /bin/busybox $r/run/envrun-vm/busybox || fail "cannot copy busybox"
        exec switch_root $r /run/envrun-vm/busybox sh /run/envrun-vm/job/guest.sh stage2
        fail "switch_root failed"
}

stage2() {
        b=$bb
        export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        $b mkdir -p /dev/pts /dev/shm /dev/mqueue
        $b mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || fail "cannot mount /dev/pts"
        $b mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || fail "cannot mount /dev/shm"
        $b mount -t mqueue mqueue /dev/mqueue 2>/dev/null
        [ -e /dev/fd ] || $b ln -s /proc/self/fd /dev/fd
        [ -e /dev/stdin ] || $b ln -s /proc/self/fd/0 /dev/stdin
        [ -e /dev/stdout ] || $b ln -s /proc/self/fd/1 /dev/stdout
        [ -e /dev/stderr ] || $b ln -s /proc/self/fd/2 /dev/stderr
        # As systemd mounts it on a pure cgroup v2 host.
        $b mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup 2>/dev/null ||
                $b mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "cannot mount cgroup2"
        # /tmp is the overlay's: the host's /tmp shows through read-only, writes
        # stay in the VM.  Make sure it is world-writable and sticky.
        $b chmod 1777 /tmp
        $b hostname envrun-vm
        $b ip link set lo up || fail "cannot bring up the loopback interface"

        cg=$($b cat /proc/self/cgroup)
        [ "$cg" = "0::/" ] || fail "not pure cgroup v2: /proc/self/cgroup is: $cg"
        ctl=$($b cat /sys/fs/cgroup/cgroup.controllers)
        for c in memory pids; do
                case " $ctl " in *" $c "*) ;; *) fail "no $c controller in cgroup v2: $ctl" ;; esac
        done
        if $b grep -q '^cgroup ' /proc/mounts; then fail "a cgroup v1 hierarchy is mounted"; fi
        echo "envrun-vm: /proc/self/cgroup: $cg" >/dev/console
        echo "envrun-vm: cgroup.controllers: $ctl" >/dev/console
        echo "envrun-vm: kernel $($b uname -r), $($b nproc) CPUs, $($b awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) MiB" >/dev/console

        # Nothing but emergencies from the kernel while the command runs.
        $b dmesg -n 1

        # The command's stdout and stderr, each through a pipe to its own
        # serial port, raw so that the bytes arrive as they were written.
        $b stty -F /dev/ttyS1 raw -echo || fail "cannot set up ttyS1"
        $b stty -F /dev/ttyS2 raw -echo || fail "cannot set up ttyS2"
        $b mkfifo /run/envrun-vm/out /run/envrun-vm/err || fail "mkfifo"
        $b cat /run/envrun-vm/out >/dev/ttyS1 &
        cat1=$!
        $b cat /run/envrun-vm/err >/dev/ttyS2 &
        cat2=$!

        echo "ENVRUN-VM-START" >/dev/console
        cd /
        # A session of its own, no terminal, stdin empty, env from cmd.sh only.
        $b setsid $b env -i $b sh $job/cmd.sh </dev/null >/run/envrun-vm/out 2>/run/envrun-vm/err &
        cmd=$!
        wait $cmd
        status=$?

        # Whatever the command left running goes, so the pipes close; three
        # rounds, for processes forked while the first was being killed.
        for _ in 1 2 3; do
                for p in /proc/[0-9]*; do
                        pid=${p#/proc/}
                        case " 1 $cat1 $cat2 " in *" $pid "*) continue ;; esac
                        kill -9 "$pid" 2>/dev/null
                done
        done
        # The cats end once the pipes are closed; a serial port's last close
        # waits until its output has gone out.
        wait $cat1
        wait $cat2

        echo "$status" >"$job/status"
        echo "ENVRUN-VM-EXIT $status" >/dev/console
        $b sync
        $b poweroff -f
}

case "$1" in
stage1) stage1 ;;
stage2) stage2 ;;
*) echo "usage: guest.sh stage1|stage2" >&2 ;;
esac
