# A real Slurm on this one machine, for integration tests (source this file; docs/slurm-local.md).
#
#   slurm_local_start DIR   install munge and Slurm (Debian's slurmctld, slurmd, slurm-client)
#                           when missing, write DIR/slurm.conf (one node: this host, its cores and
#                           90% of its memory; one partition "debug"; no GPUs, no cgroups, no
#                           database), start a munged of its own (own key and socket under DIR),
#                           slurmctld and slurmd, wait until the node is idle, and export
#                           SLURM_CONF=DIR/slurm.conf so that sbatch, squeue, scontrol ... use it.
#                           Returns 0 when the node is idle; 77 (with one line on stderr saying
#                           why) when this machine cannot run it: not root, no apt-get or the
#                           install failed, a Slurm already running here (refused, never reused
#                           or touched), a daemon that exits as it starts; 1 when the daemons run
#                           but the node does not come up within 60 s (the logs are printed).
#   slurm_local_stop DIR    cancel every job of this Slurm, stop the daemons that start recorded
#                           (DIR/run/NAME.pid and .start: pid and start time, so that a reused pid
#                           is never signalled) and kill what is left of their process trees and
#                           of the slurmstepd's holding files under DIR; 0 when none of them is
#                           left. Safe to call twice or after a failed start (a trap on EXIT).
#
# Both leave the caller's shell options as they were (set -e, pipefail: handled inside). A
# second start on a DIR whose Slurm runs is refused like any other running Slurm.
#   slurm_local_logs DIR    the tail of each daemon's output (for a failing test)
#
# Everything lives under DIR: slurm.conf, munge.key, the munge socket, state, spool, logs, pid
# files and DIR/jobcomp.txt (one line per finished job: the record of finished jobs that stays;
# sacct has no database here). Ports: 6817 (slurmctld) and 6818 (slurmd) on this host.

slurm_local_reason() { echo "slurm_local: $*" >&2; }

# the Debian packages; a command each provides, to tell whether it is installed
slurm_local_pkgs=(munge slurmctld slurmd slurm-client)

slurm_local_install() {
  local need=0 c
  for c in munged mungekey slurmctld slurmd sbatch squeue scontrol sinfo scancel; do
    command -v "$c" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$c" >/dev/null 2>&1 || need=1
  done
  [ "$need" = 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || { slurm_local_reason "no apt-get to install ${slurm_local_pkgs[*]}: skipped"; return 77; }
  echo "slurm_local: installing ${slurm_local_pkgs[*]}" >&2
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
           --no-install-recommends "${slurm_local_pkgs[@]}"; } >/tmp/slurm_local_apt.$$ 2>&1; then
    tail -5 /tmp/slurm_local_apt.$$ >&2
    rm -f /tmp/slurm_local_apt.$$
    slurm_local_reason "apt-get install ${slurm_local_pkgs[*]} failed (offline?): skipped"
    return 77
  fi
  rm -f /tmp/slurm_local_apt.$$
}

# is something listening on 127.0.0.1:PORT
slurm_local_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# is process PID running (a zombie is not)
slurm_local_alive() {
  local st
  [ -n "${1:-}" ] && st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [ "${st%% *}" != Z ]
}
# when process PID started (to never signal a pid reused by another process)
# shellcheck disable=SC2086
slurm_local_started() { local st; st=$(cat "/proc/$1/stat" 2>/dev/null) && st=${st##*) } && set -- $st && echo "${20}"; }

# (DIR/log/NAME.out: the daemon's stderr, which with -D holds all of its log file and any
# fatal error from before the log file was opened)
slurm_local_logs() {
  local f
  for f in "$1"/log/*.out; do
    [ -s "$f" ] || continue
    echo "---- $f (last 25 lines)" >&2
    tail -25 "$f" >&2
  done
}

# start DAEMON's command line in the background, its own session, output in DIR/log/NAME.out;
# its pid in DIR/run/NAME.pid
slurm_local_spawn() {
  local dir=$1 name=$2; shift 2
  setsid "$@" </dev/null >"$dir/log/$name.out" 2>&1 &
  echo $! >"$dir/run/$name.pid"
  slurm_local_started $! >"$dir/run/$name.start"
}

# the pid of daemon NAME that DIR's start spawned, when that process still runs
slurm_local_pid() {
  local pid
  pid=$(cat "$1/run/$2.pid" 2>/dev/null) && slurm_local_alive "$pid" &&
    [ "$(slurm_local_started "$pid")" = "$(cat "$1/run/$2.start" 2>/dev/null)" ] && echo "$pid"
}

slurm_local_path() { case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH=$PATH:/usr/sbin:/sbin ;; esac; }

slurm_local_start() {
  local -
  set +e +o pipefail   # whatever the caller's options: every failure here is handled
  local dir=${1:?slurm_local_start DIR}
  slurm_local_path
  [ "$(id -u)" = 0 ] || { slurm_local_reason "not root (Slurm's daemons and apt-get need it): skipped"; return 77; }
  slurm_local_install || return $?
  # refuse to run beside another Slurm (never clobber or reuse it): its daemons, or their ports
  local others
  others=$(ps -e -o pid=,stat=,comm= | awk '$2 !~ /^Z/ && $3 ~ /^(slurmctld|slurmd|slurmstepd|slurmdbd)$/ {printf "%s%s %s", sep, $1, $3; sep="; "}')
  if [ -n "$others" ]; then
    slurm_local_reason "a Slurm is already running on this machine ($others): not touched, skipped"
    return 77
  fi
  local p
  for p in 6817 6818; do
    if slurm_local_port_busy $p; then
      slurm_local_reason "port $p (Slurm's) is taken on this machine: skipped"; return 77
    fi
  done

  mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
  # munge's and the job steps' sockets live under DIR: a unix socket path has 107 bytes at most
  if [ ${#dir} -gt 60 ]; then
    echo "slurm_local: DIR $dir is too long for the sockets under it (60 bytes at most): use mktemp -d /tmp/NAME.XXXXXX" >&2
    return 1
  fi
  mkdir -p "$dir"/{state,spool,log,run,munge} || return 1
  # a fresh Slurm each time: no jobs, nodes or logs of an earlier start in DIR
  rm -rf "${dir:?}"/state/* "${dir:?}"/spool/* "${dir:?}"/log/* "$dir/jobcomp.txt"
  # munged refuses a key or socket in a directory others may write to; the socket must be
  # reachable by every user that submits jobs (the key itself is 0400)
  chmod 755 "$dir/munge"
  chmod go-w "$dir"

  # this machine as slurmd sees it (slurmd -C), memory less 10%, at least 512 MiB kept back
  local host hw cpus boards sockets cores threads mem
  host=$(hostname -s)
  hw=$(slurmd -C 2>/dev/null | head -1)
  cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
  boards=$(sed -n 's/.*Boards=\([0-9]*\).*/\1/p' <<<"$hw")
  sockets=$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")
  cores=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")
  threads=$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  [ -n "$cpus" ] || cpus=$(nproc)
  [ -n "$mem" ] || mem=$(free -m | awk '/^Mem:/ {print $2}')
  local keep=$((mem / 10)); [ "$keep" -ge 512 ] || keep=512
  mem=$((mem - keep)); [ "$mem" -ge 256 ] || mem=256
  local topo="CPUs=$cpus"
  [ -n "$sockets" ] && [ -n "$cores" ] && [ -n "$threads" ] &&
    topo="CPUs=$cpus Boards=${boards:-1} SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads"

  cat >"$dir/slurm.conf" <<EOF
# written by tests/integration/slurm_local.sh (docs/slurm-local.md says why each line)
ClusterName=ptblocal
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.daemon.pid
SlurmdPidFile=$dir/run/slurmd.daemon.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
MailProg=/bin/true
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups: processes found through /proc (parent links), nothing bound or confined
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((mem / cpus))
SchedulerType=sched/backfill
ReturnToService=2
# no slurmdbd: sacct has nothing to read; finished jobs stay in squeue --states=all and
# scontrol show job for MinJobAge seconds, and each one is a line of JobCompLoc for good
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
MinJobAge=3600
MaxJobCount=100000
MaxArraySize=100001
# fast ends: SIGKILL 5 s after SIGTERM (time limit, scancel), no grace minutes over the limit
KillWait=5
OverTimeLimit=0
InactiveLimit=0
SlurmdTimeout=300
NodeName=$host NodeAddr=127.0.0.1 NodeHostname=$host $topo RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$dir/slurm.conf

  # munge: a key and a daemon of our own (the system's, if any, is left alone)
  if [ ! -s "$dir/munge/munge.key" ]; then
    if command -v mungekey >/dev/null 2>&1; then
      mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null 2>&1
    fi
    [ -s "$dir/munge/munge.key" ] ||
      dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge/munge.key"
  fi
  slurm_local_spawn "$dir" munged munged --foreground --force \
    --socket="$dir/munge/munge.socket.2" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/run/munged.daemon.pid" \
    --seed-file="$dir/munge/munge.seed"
  for _ in $(seq 50); do
    [ -S "$dir/munge/munge.socket.2" ] && break
    slurm_local_alive "$(slurm_local_pid "$dir" munged)" || break
    sleep 0.1
  done
  if ! munge -n -S "$dir/munge/munge.socket.2" 2>/dev/null | unmunge -S "$dir/munge/munge.socket.2" >/dev/null 2>&1; then
    slurm_local_logs "$dir"
    slurm_local_stop "$dir"
    slurm_local_reason "munged does not start here (logs above): skipped"
    return 77
  fi

  slurm_local_spawn "$dir" slurmctld slurmctld -D -i -f "$dir/slurm.conf"
  slurm_local_spawn "$dir" slurmd slurmd -D -N "$host" -f "$dir/slurm.conf"
  local state="" t0=$SECONDS d
  while [ $((SECONDS - t0)) -lt 60 ]; do
    for d in slurmctld slurmd; do
      if ! slurm_local_alive "$(slurm_local_pid "$dir" $d)"; then
        slurm_local_logs "$dir"
        slurm_local_stop "$dir"
        slurm_local_reason "$d exited as it started (logs above): skipped"
        return 77
      fi
    done
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null)
    [ "$state" = idle ] && return 0
    sleep 0.5
  done
  slurm_local_logs "$dir"
  echo "slurm_local: node $host not idle after 60 s (state: ${state:-none}); sinfo:" >&2
  sinfo -N -l >&2 2>&1
  slurm_local_stop "$dir"
  return 1
}

slurm_local_stop() {
  local -
  set +e +o pipefail
  local dir=${1:?slurm_local_stop DIR}
  [ -d "$dir/run" ] || return 0
  dir=$(cd "$dir" && pwd)
  slurm_local_path
  local ctld slurmd munged
  ctld=$(slurm_local_pid "$dir" slurmctld)
  slurmd=$(slurm_local_pid "$dir" slurmd)
  munged=$(slurm_local_pid "$dir" munged)
  # jobs first, while slurmctld and slurmd can still end them (KillWait is 5 s)
  if slurm_local_alive "$ctld" && slurm_local_alive "$slurmd"; then
    local jobs
    jobs=$(SLURM_CONF=$dir/slurm.conf squeue -h -o %i -t PD,R,CG,S,CF,RQ,RS,RH,SO,ST,SI 2>/dev/null)
    # shellcheck disable=SC2086
    [ -n "$jobs" ] && SLURM_CONF=$dir/slurm.conf scancel $jobs 2>/dev/null
    for _ in $(seq 40); do
      [ -z "$(SLURM_CONF=$dir/slurm.conf squeue -h -o %i -t R,CG,S,SO,ST,SI 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
  # the job step daemons our slurmd started (each holds DIR/log/slurmd.log open) and what
  # they run: killed after the daemons, if scancel left any
  local stepd=() pid
  local fd
  for pid in $(pgrep -x slurmstepd 2>/dev/null); do
    for fd in /proc/"$pid"/fd/*; do
      [[ "$(readlink "$fd" 2>/dev/null)" == "$dir/"* ]] && { stepd+=("$pid"); break; }
    done
  done
  # with the daemons' own children (slurmctld's slurmscriptd)
  local tree=() more=1 ppid
  for pid in $ctld $slurmd $munged "${stepd[@]}"; do slurm_local_alive "$pid" && tree+=("$pid"); done
  while [ "$more" = 1 ]; do
    more=0
    while read -r pid ppid; do
      [[ " ${tree[*]} " == *" $ppid "* ]] && [[ " ${tree[*]} " != *" $pid "* ]] && { tree+=("$pid"); more=1; }
    done < <(ps -e -o pid=,ppid=)
  done
  local -A since=()
  for pid in "${tree[@]}"; do since[$pid]=$(slurm_local_started "$pid"); done
  local d p
  for d in slurmd slurmctld munged; do
    p=$(slurm_local_pid "$dir" $d)
    slurm_local_alive "$p" || continue
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 100); do slurm_local_alive "$p" || break; sleep 0.1; done
    slurm_local_alive "$p" && kill -KILL "$p" 2>/dev/null
    for _ in $(seq 20); do slurm_local_alive "$p" || break; sleep 0.1; done
    slurm_local_alive "$p" || wait "$p" 2>/dev/null   # reap it, when it is this shell's child
  done
  for p in "${tree[@]}"; do
    slurm_local_alive "$p" && [ "$(slurm_local_started "$p")" = "${since[$p]}" ] && kill -KILL "$p" 2>/dev/null
  done
  rm -f "$dir"/run/*.pid "$dir"/run/*.start
  local left=""
  for _ in $(seq 20); do
    left=""
    for p in "${tree[@]}"; do
      slurm_local_alive "$p" && [ "$(slurm_local_started "$p")" = "${since[$p]}" ] && left+=" $p"
    done
    [ -z "$left" ] && break
    sleep 0.1
  done
  [ -z "$left" ] || { slurm_local_reason "still running after stop:$left"; return 1; }
}
