#!/usr/bin/env bash
# Boots an installer ISO in qemu-system-x86_64 (software emulation) and passes
# only when the demo initramfs reports the expected user-data sha256 on the
# serial console. Modes: bios (SeaBIOS, CD), uefi (OVMF, CD), usb (OVMF, the
# ISO as a disk, as a USB stick boots it). Each mode also prints the kernel
# command line the booted entry gave (from the kernel's log on the serial
# console), so callers can check which entry booted with which arguments.
#   scripts/boot-test.sh ISO SHA256 [MODE...]      (default modes: bios uefi)
set -euo pipefail
iso=${1:?usage: boot-test.sh ISO SHA256 [bios|uefi|usb]...}
want=${2:?usage: boot-test.sh ISO SHA256 [bios|uefi|usb]...}
shift 2
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(bios uefi)
limit=${BOOT_TEST_TIMEOUT:-240}
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd
ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd
command -v qemu-system-x86_64 >/dev/null || { echo "boot-test: qemu-system-x86_64 missing (Debian package qemu-system-x86)" >&2; exit 4; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
for mode in "${modes[@]}"; do
  log=$work/$mode.log
  args=(-m 512 -nographic -no-reboot -monitor none -serial "file:$log")
  case $mode in
    bios) args+=(-cdrom "$iso") ;;
    uefi | usb)
      [ -f "$ovmf_code" ] || { echo "boot-test: $ovmf_code missing (Debian package ovmf)" >&2; exit 4; }
      cp "$ovmf_vars" "$work/vars-$mode.fd"
      args+=(-drive "if=pflash,format=raw,readonly=on,file=$ovmf_code" -drive "if=pflash,format=raw,file=$work/vars-$mode.fd")
      if [ "$mode" = uefi ]; then args+=(-cdrom "$iso"); else args+=(-drive "file=$iso,format=raw,if=ide,media=disk,snapshot=on"); fi
      ;;
    *) echo "boot-test: unknown mode $mode (bios, uefi, usb)" >&2; exit 2 ;;
  esac
  start=$(date +%s)
  timeout "$limit" qemu-system-x86_64 "${args[@]}" </dev/null >/dev/null 2>&1 || true
  took=$(( $(date +%s) - start ))
  line=$(tr -d '\r' < "$log" | grep -a -m1 'EDGEFORGE-BOOT' || true)
  cmdline=$(tr -d '\r' < "$log" | grep -a -m1 -o ' Command line: .*' | sed 's/^ Command line: //' || true)
  if printf '%s' "$line" | grep -q "user-data sha256=$want"; then
    echo "boot-test $mode: ok in ${took}s: $line"
    echo "boot-test $mode: kernel command line: ${cmdline:-not seen}"
  else
    failed=1
    echo "boot-test $mode: FAILED after ${took}s (want user-data sha256=$want); got: ${line:-no EDGEFORGE-BOOT line}" >&2
    echo "boot-test $mode: kernel command line: ${cmdline:-not seen}" >&2
    echo "--- last serial output ($mode) ---" >&2
    tr -d '\r' < "$log" | sed 's/\x1b\[[0-9;]*[a-zA-Z]//g' | tail -n 25 >&2
  fi
done
exit $failed
