#!/usr/bin/env bash
# Builds a C plugin into a WebAssembly component:
#
#     examples/c/build.sh <world> <plugin.c> <output.wasm>
#
# <world> is `condition` or `template`. `WIT=<folder>` builds against another version of the WIT
# package (default: the newest, in `wit/`; earlier ones are in `wit/<version>/`); `CFLAGS` adds
# compiler flags. Needs `wit-bindgen` (cargo install wit-bindgen-cli
# --version 0.61.1 --locked), clang with a wasm32-wasi C library (Debian: clang lld
# libclang-rt-dev-wasm32 wasi-libc) and rustup's toolchain, whose wasm-component-ld links the
# module straight into a component.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 <condition|template> <plugin.c> <output.wasm>" >&2; exit 2; }
world=$1 source=$2 output=$3
here=$(cd "$(dirname "$0")" && pwd)
wit=${WIT:-$here/../../wit}

bindings=$(mktemp -d)
trap 'rm -rf "$bindings"' EXIT
# wit-bindgen names each file it writes; say only what went wrong.
if ! out=$(wit-bindgen c "$wit" --world "$world" --out-dir "$bindings" 2>&1); then
    echo "$out" >&2
    exit 1
fi

host=$(rustc -vV | sed -n 's/^host: //p')
linker="$(rustc --print sysroot)/lib/rustlib/$host/bin/wasm-component-ld"
# shellcheck disable=SC2086 # CFLAGS is a list of flags
clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Werror ${CFLAGS:-} \
    -I"$here" -I"$bindings" -fuse-ld="$linker" \
    "$source" "$here/json.c" "$bindings/$world.c" "$bindings/${world}_component_type.o" -o "$output"
