# Shared by scripts/setup.sh and scripts/load.sh (sourced, not run): install a
# Debian package when the command it provides is missing, as root or via sudo.

say() { printf '%s: %s\n' "${SAY_PREFIX:-setup}" "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@";
  elif command -v sudo >/dev/null 2>&1; then sudo "$@";
  else say "need root to run: $*"; return 1; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    say "apt-get update"
    as_root apt-get update -qq
    apt_updated=1
  fi
  say "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_command() { # command package
  if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "/usr/bin/$1" ] && [ ! -x "/usr/sbin/$1" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
      say "$1 is missing and this is not a Debian-like system: install $2 yourself"
      exit 1
    fi
    apt_install "$2"
  fi
}
