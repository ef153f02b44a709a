#!/usr/bin/env bash
# Builds a base image for the Trainer image where no container registry is reachable (an air-gapped
# site, or a machine that reaches only a Debian mirror): a minimal Debian from debootstrap with what
# .NET needs, and the host's own .NET 10 runtimes (Microsoft.NETCore.App and Microsoft.AspNetCore.App,
# copied from the SDK's folder). It stands in for mcr.microsoft.com/dotnet/aspnet:10.0 the way that
# image is laid out: dotnet in /usr/share/dotnet, an unprivileged user "app" with uid 1654 (APP_UID).
#
#   deploy/container/offline-base.sh [--tag NAME] [--mirror URL] [--if-missing]
#
#   --tag NAME      [localhost/trainer-base:10.0]
#   --mirror URL    a Debian mirror (the base is Debian 12, bookworm)     [http://deb.debian.org/debian]
#   --if-missing    build only if no image has the tag; a second caller waits for the first
#
# Needs root (debootstrap) and podman or docker (CONTAINER_ENGINE, as for build-image.sh). Then:
#   deploy/container/build-image.sh --base localhost/trainer-base:10.0
# Prints the image's name on its last line.
set -euo pipefail

tag=localhost/trainer-base:10.0
mirror=http://deb.debian.org/debian
if_missing=0
while (($#)); do
  case "$1" in
    --tag) tag="${2:?--tag needs a name}"; shift 2 ;;
    --mirror) mirror="${2:?--mirror needs a URL}"; shift 2 ;;
    --if-missing) if_missing=1; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "offline-base.sh: error: unknown argument '$1'; allowed: --tag NAME, --mirror URL, --if-missing" >&2; exit 2 ;;
  esac
done

source "$(dirname "$0")/engine.sh"
if ((if_missing)); then
  # One build at a time per tag: CI starts one while the solution builds, and a test that needs the
  # image waits for it here rather than building a second.
  exec 9> "${TMPDIR:-/tmp}/trainer-offline-base-${tag//[^A-Za-z0-9._-]/_}.lock"
  flock 9
  if "${engine[@]}" image inspect "$tag" > /dev/null 2>&1; then echo "$tag"; exit 0; fi
fi
command -v debootstrap > /dev/null 2>&1 || { echo "offline-base.sh: error: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "offline-base.sh: error: debootstrap needs root" >&2; exit 2; }

# The host's .NET root: where its Microsoft.NETCore.App 10 runtime lives.
shared="$(dotnet --list-runtimes | sed -n 's/^Microsoft\.NETCore\.App 10\.[^ ]* \[\(.*\)\]$/\1/p' | head -1)"
[ -n "$shared" ] || { echo "offline-base.sh: error: the host's dotnet has no Microsoft.NETCore.App 10 runtime" >&2; exit 2; }
dotnet_root="$(dirname "$(dirname "$shared")")"

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
# What mcr.microsoft.com/dotnet/runtime-deps holds: certificates, ICU, OpenSSL, zlib, time zones.
# Debian 12 (bookworm), whatever the host runs: the base's package names are bookworm's.
debootstrap --variant=minbase --include=ca-certificates,libicu72,libssl3,zlib1g,tzdata \
  bookworm "$root" "$mirror" > "$root.debootstrap.log" 2>&1 \
  || { echo "offline-base.sh: error: debootstrap failed; its log: $root.debootstrap.log" >&2; exit 1; }
rm -f "$root.debootstrap.log"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

mkdir -p "$root/usr/share/dotnet"
cp -a "$dotnet_root/dotnet" "$dotnet_root/host" "$root/usr/share/dotnet/"
for framework in Microsoft.NETCore.App Microsoft.AspNetCore.App; do
  mkdir -p "$root/usr/share/dotnet/shared/$framework"
  cp -a "$dotnet_root/shared/$framework"/10.* "$root/usr/share/dotnet/shared/$framework/"
done
ln -s /usr/share/dotnet/dotnet "$root/usr/bin/dotnet"
chroot "$root" sh -c 'groupadd --gid=1654 app && useradd -l --uid=1654 --gid=1654 --create-home app'

tar -C "$root" -c . | "${engine[@]}" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV APP_UID=1654' \
  --change 'ENV DOTNET_RUNNING_IN_CONTAINER=true' \
  - "$tag" > /dev/null
echo "$tag"
