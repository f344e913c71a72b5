# Sourced by the sanitizer scripts, which need a nightly toolchain (tsan.sh,
# asan.sh): `need_nightly NAME COMPONENT...` checks that nightly is there
# and that it has the listed components, installing those that are missing.
# When it cannot, it says so plainly and exits non-zero: nothing was checked.

need_nightly() {
    local name="$1"
    shift
    if ! cargo +nightly --version >/dev/null 2>&1; then
        echo "$name: no nightly toolchain; install it with: rustup toolchain install nightly" >&2
        exit 1
    fi
    local installed missing=()
    installed="$(rustup component list --toolchain nightly --installed 2>/dev/null)"
    for component in "$@"; do
        grep -q "^$component" <<<"$installed" || missing+=("$component")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    echo "$name: installing ${missing[*]} (rustup component add --toolchain nightly)" >&2
    if ! rustup component add "${missing[@]}" --toolchain nightly; then
        echo "$name: the nightly components ${missing[*]} are not installed and could not be; nothing was checked" >&2
        exit 1
    fi
}
