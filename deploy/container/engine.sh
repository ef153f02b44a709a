# Sourced by build-image.sh and offline-base.sh: sets the array `engine` to the container engine's
# command: CONTAINER_ENGINE (word-split, e.g. "podman --runtime /path/runc"), else docker if its
# daemon answers, else podman; exits 2 naming both when neither is installed.
if [ -n "${CONTAINER_ENGINE:-}" ]; then
  read -r -a engine <<< "$CONTAINER_ENGINE"
elif command -v docker > /dev/null 2>&1 && docker info > /dev/null 2>&1; then
  engine=(docker)
elif command -v podman > /dev/null 2>&1; then
  engine=(podman)
elif command -v docker > /dev/null 2>&1; then
  engine=(docker)   # installed, but its daemon did not answer: its own error will say why
else
  echo "$(basename "$0"): error: neither docker nor podman is installed; install one, or name it in CONTAINER_ENGINE" >&2
  exit 2
fi
