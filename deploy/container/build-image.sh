#!/usr/bin/env bash
# Builds the Trainer container image (deploy/container/Dockerfile): publishes trainer-silo and
# trainer (Release, framework-dependent) with the host's .NET SDK into a staging folder, then builds
# the image from it with docker or podman.
#
#   deploy/container/build-image.sh [--tag NAME] [--base IMAGE] [--no-build]
#
#   --tag NAME     the image's name                                   [trainer:latest]
#   --base IMAGE   the .NET 10 ASP.NET Core runtime image to build on [mcr.microsoft.com/dotnet/aspnet:10.0]
#                  (deploy/container/offline-base.sh builds one where no registry is reachable)
#   --no-build     publish what the last `dotnet build -c Release` built, without building
#
# Environment:
#   CONTAINER_ENGINE  the command that builds, e.g. docker, podman, or "podman --runtime /path/runc"
#                     [docker if its daemon answers, else podman]
# Prints the image's name on its last line.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"

tag=trainer:latest
base=mcr.microsoft.com/dotnet/aspnet:10.0
build=()
while (($#)); do
  case "$1" in
    --tag) tag="${2:?--tag needs a name}"; shift 2 ;;
    --base) base="${2:?--base needs an image}"; shift 2 ;;
    --no-build) build=(--no-build); shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image.sh: error: unknown argument '$1'; allowed: --tag NAME, --base IMAGE, --no-build" >&2; exit 2 ;;
  esac
done

source "$(dirname "$0")/engine.sh"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
# Two folders, not one: each app has its own deps.json and runtimeconfig, and the silo's
# appsettings.json must not become the CLI's.
dotnet publish "$repo/src/Trainer.Silo" -c Release "${build[@]}" -o "$stage/silo" -p:UseAppHost=true --nologo -v quiet
dotnet publish "$repo/src/Trainer.Client" -c Release "${build[@]}" -o "$stage/client" -p:UseAppHost=true --nologo -v quiet
# Native libraries (SkiaSharp's, for plots) of the image's platform only, not of every platform.
case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) arch="$(uname -m)" ;; esac
find "$stage"/silo/runtimes "$stage"/client/runtimes -mindepth 1 -maxdepth 1 -type d \
  ! -name "linux-$arch" ! -name linux ! -name unix -exec rm -rf {} + 2> /dev/null || true
cp "$repo/deploy/container/Dockerfile" "$stage/Dockerfile"

"${engine[@]}" build --build-arg "BASE_IMAGE=$base" -t "$tag" "$stage" >&2
echo "$tag"
