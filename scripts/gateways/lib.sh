# Shared by the gateways' start and stop scripts (sourced): start a command in a process group
# of its own with its pid in a file, and stop exactly that group.
#
#   start_group PID_FILE LOG COMMAND...   runs COMMAND as the leader of a new session and
#                                         process group (setsid), stdout and stderr to LOG,
#                                         and writes its pid (= the group's id) to PID_FILE
#   stop_group PID_FILE                   SIGTERM to that pid, up to 15 s for the whole group
#                                         to exit, then SIGKILL to the group; only a group whose
#                                         id is the pid in the file (one start_group made)

start_group() {
  local pid_file=$1 log=$2
  shift 2
  # Not a group leader here (no job control in a script), so setsid(1) calls setsid() and execs:
  # $! is the command itself, the leader of its new group.
  setsid "$@" >"$log" 2>&1 </dev/null &
  echo $! >"$pid_file"
}

_group_alive() { # any process left in group $1?
  local g=$1 p stat
  for p in /proc/[0-9]*; do
    stat=$(cat "$p/stat" 2>/dev/null) || continue
    stat=${stat##*) }                   # after "pid (comm) ": state ppid pgrp ...
    set -- $stat
    [ "$3" = "$g" ] && return 0
  done
  return 1
}

stop_group() {
  local pid_file=$1 pid
  [ -f "$pid_file" ] || { echo "stop: no pid file $pid_file (nothing started)" >&2; return 0; }
  pid=$(cat "$pid_file")
  case $pid in '' | *[!0-9]*) echo "stop: $pid_file holds no pid" >&2; return 1 ;; esac
  if ! _group_alive "$pid"; then
    rm -f "$pid_file"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 150); do
    _group_alive "$pid" || { rm -f "$pid_file"; return 0; }
    sleep 0.1
  done
  echo "stop: group $pid still running 15 s after SIGTERM: SIGKILL" >&2
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$pid_file"
}
