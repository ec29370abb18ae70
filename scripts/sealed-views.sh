# Sourced by scripts/test and the bench scripts. The runtime and the shim
# re-exec from a read-only view of their binary kept under
# /run/wharf-sealed-exe (ADR 0008); `unmount_sealed_views DIR` removes the
# views of binaries under DIR (a build's target directory), the ones a test
# or benchmark run made, and leaves those of installed binaries alone.
unmount_sealed_views() {
    local dir
    dir=$(realpath -m "$1")
    awk -v t="$dir/" '$5 ~ "^/run/wharf-sealed-exe/" && index($4, t) == 1 { print $5 }' \
        /proc/self/mountinfo | while read -r m; do
        umount "$m" 2>/dev/null && rm -f "$m"
    done
}
