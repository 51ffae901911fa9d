#!/usr/bin/env bash
# Boots an installer ISO in qemu-system-x86_64 (software emulation) and passes
# only when the booted system reports the expected user-data sha256 on the
# serial console, in its EDGEFORGE-BOOT line (the busybox demo base's
# initramfs and the Debian base's edgeforge-report.service print one, then
# power off). Modes: bios (SeaBIOS, CD), uefi (OVMF, CD), usb (OVMF, the ISO
# as a disk, as a USB stick boots it), disk (SeaBIOS, the image as a disk). Each mode also prints the kernel
# command line the booted entry gave (from the kernel's log on the serial
# console), so callers can check which entry booted with which arguments.
#   scripts/boot-test.sh ISO SHA256 [MODE...]      (default modes: bios uefi)
# Environment:
#   BOOT_TEST_MEMORY   guest memory in MiB (default 512; the Debian base needs 2048)
#   BOOT_TEST_SMP      guest CPUs (default 1)
#   BOOT_TEST_TIMEOUT  seconds per boot before giving up (default 240)
#   BOOT_TEST_EXPECT   an extended regex the EDGEFORGE-BOOT line must also
#                      match, e.g. 'root=overlay rootfsbase=squashfs .*label=COS_LIVE'
#   BOOT_TEST_DRIVE    an extra image attached read-only: an ISO9660 image as
#                      a second CD-ROM, anything else as a second disk (e.g. a
#                      site user-data medium labelled cidata)
#   BOOT_TEST_SECURE   1: OVMF's Secure Boot firmware (OVMF_CODE_4M.secboot.fd,
#                      q35 with SMM) for the uefi and usb modes
#   BOOT_TEST_VARS     the OVMF variable store to start from (copied; default
#                      OVMF_VARS_4M.fd, no keys: setup mode; OVMF_VARS_4M.ms.fd
#                      has Microsoft's keys enrolled)
#   BOOT_TEST_VARS_OUT keep the variable store after the boot there (keys a
#                      boot enrolled), to start a later boot from it
#   BOOT_TEST_REBOOT   1: let the guest reset (firmware that enrols keys resets
#                      once); qemu still exits when the guest powers off
#   BOOT_TEST_REFUSE   an extended regex: the boot passes when the serial log
#                      shows it before any EDGEFORGE-BOOT line (e.g. the
#                      firmware's 'Access Denied' for an image it must refuse)
#   BOOT_TEST_FORMAT   the image's format for the usb and disk modes (default
#                      raw; qcow2, vmdk: anything qemu reads)
#   BOOT_TEST_ACCEL    qemu accelerator (default tcg; kvm where /dev/kvm works)
#   BOOT_TEST_QEMU_ARGS  more qemu arguments, split on spaces (e.g. -vga none)
#   BOOT_TEST_LOG_DIR  keep each mode's serial log there as MODE.log
set -euo pipefail
usage="usage: boot-test.sh IMAGE SHA256 [bios|uefi|usb|disk]..."
iso=${1:?$usage}
want=${2:?$usage}
shift 2
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(bios uefi)
limit=${BOOT_TEST_TIMEOUT:-240}
memory=${BOOT_TEST_MEMORY:-512}
smp=${BOOT_TEST_SMP:-1}
expect=${BOOT_TEST_EXPECT:-}
drive=${BOOT_TEST_DRIVE:-}
accel=${BOOT_TEST_ACCEL:-tcg}
secure=${BOOT_TEST_SECURE:-}
vars_in=${BOOT_TEST_VARS:-}
vars_out=${BOOT_TEST_VARS_OUT:-}
reboot=${BOOT_TEST_REBOOT:-}
refuse=${BOOT_TEST_REFUSE:-}
format=${BOOT_TEST_FORMAT:-raw}
logs=${BOOT_TEST_LOG_DIR:-}
read -r -a more <<<"${BOOT_TEST_QEMU_ARGS:-}"
# After the line the guest powers off and qemu (-no-reboot) exits: at once for
# the busybox demo, after about 20 s for the Debian base (dracut-shutdown
# unpacks the initramfs again under software emulation). The verdict does not
# depend on it, so qemu is stopped this many seconds after the line.
line_grace=5
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd
ovmf_vars=${vars_in:-/usr/share/OVMF/OVMF_VARS_4M.fd}
[ -z "$secure" ] || ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd
[ -f "$ovmf_vars" ] || { echo "boot-test: variable store $ovmf_vars: no such file" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "boot-test: qemu-system-x86_64 missing (Debian package qemu-system-x86)" >&2; exit 4; }
[ -f "$iso" ] || { echo "boot-test: $iso: no such file" >&2; exit 2; }
extra=()
if [ -n "$drive" ]; then
  [ -f "$drive" ] || { echo "boot-test: BOOT_TEST_DRIVE $drive: no such file" >&2; exit 2; }
  if [ "$(dd if="$drive" bs=1 skip=32769 count=5 status=none 2>/dev/null)" = CD001 ]; then
    extra=(-drive "file=$drive,format=raw,if=ide,index=3,media=cdrom,readonly=on")
  else
    extra=(-drive "file=$drive,format=raw,if=ide,index=1,media=disk,snapshot=on")
  fi
fi
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }

work=$(mktemp -d)
qemu_pid=""
trap '[ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null; rm -rf "$work"' EXIT
failed=0
for mode in "${modes[@]}"; do
  log=$work/$mode.log
  grace=$line_grace
  : > "$log"
  args=(-accel "$accel" -m "$memory" -smp "$smp" -nographic -monitor none -serial "file:$log")
  [ -n "$reboot" ] || args+=(-no-reboot)
  as_disk=(-drive "file=$iso,format=$format,if=ide,index=0,media=disk,snapshot=on")
  case $mode in
    bios) args+=(-cdrom "$iso") ;;
    disk) args+=("${as_disk[@]}") ;;
    uefi | usb)
      [ -f "$ovmf_code" ] || { echo "boot-test: $ovmf_code missing (Debian package ovmf)" >&2; exit 4; }
      cp "$ovmf_vars" "$work/vars-$mode.fd"
      # Secure Boot firmware keeps its variables behind SMM: q35 with SMM on
      # and the flash marked secure, as OVMF's own documentation runs it.
      [ -z "$secure" ] || args+=(-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on)
      args+=(-drive "if=pflash,format=raw,readonly=on,file=$ovmf_code" -drive "if=pflash,format=raw,file=$work/vars-$mode.fd")
      if [ "$mode" = uefi ]; then args+=(-cdrom "$iso"); else args+=("${as_disk[@]}"); fi
      ;;
    *) echo "boot-test: unknown mode $mode (bios, uefi, usb, disk)" >&2; exit 2 ;;
  esac
  args+=("${extra[@]}" "${more[@]}")
  start=$(now_ms)
  qemu-system-x86_64 "${args[@]}" </dev/null >"$work/$mode.qemu" 2>&1 &
  qemu_pid=$!
  seen="" end=""
  while kill -0 "$qemu_pid" 2>/dev/null; do
    elapsed=$(($(now_ms) - start))
    if [ -z "$seen" ] && grep -aq 'EDGEFORGE-BOOT' "$log"; then seen=$elapsed; fi
    if [ -z "$seen" ] && [ -n "$refuse" ] && tr -d '\r' < "$log" | grep -aEq -- "$refuse"; then
      seen=$elapsed grace=0
    fi
    if [ -n "$seen" ] && [ $((elapsed - seen)) -ge $((grace * 1000)) ]; then
      end="stopped ${grace}s after the line"
      break
    fi
    if [ "$elapsed" -ge $((limit * 1000)) ]; then
      end="timed out after ${limit}s"
      break
    fi
    sleep 0.5
  done
  kill "$qemu_pid" 2>/dev/null || true
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=""
  took=$(($(now_ms) - start))
  [ -n "$seen" ] || seen=$took  # printed just before qemu exited
  [ -n "$end" ] || end="powered off at $(secs "$took")s"
  [ -z "$logs" ] || { mkdir -p "$logs" && cp "$log" "$logs/$mode.log"; }
  [ -z "$vars_out" ] || [ ! -f "$work/vars-$mode.fd" ] || cp "$work/vars-$mode.fd" "$vars_out"
  if [ -n "$refuse" ]; then
    line=$(tr -d '\r' < "$log" | grep -a -m1 -o 'EDGEFORGE-BOOT.*' || true)
    refusal=$(tr -d '\r' < "$log" | grep -a -m1 -Eo -- ".*($refuse).*" || true)
    if [ -z "$line" ] && [ -n "$refusal" ]; then
      echo "boot-test $mode: refused as expected in $(secs "$seen")s: $refusal"
    else
      failed=1
      echo "boot-test $mode: NOT refused (want /$refuse/ and no EDGEFORGE-BOOT line); got: ${line:-no EDGEFORGE-BOOT line and no refusal}" >&2
      tr -d '\r' < "$log" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | tail -n 25 >&2
    fi
    continue
  fi
  line=$(tr -d '\r' < "$log" | grep -a -m1 -o 'EDGEFORGE-BOOT.*' || true)
  cmdline=$(tr -d '\r' < "$log" | grep -a -m1 -o ' Command line: .*' | sed 's/^ Command line: //' || true)
  if printf '%s' "$line" | grep -q "user-data sha256=$want" &&
    { [ -z "$expect" ] || printf '%s' "$line" | grep -Eq -- "$expect"; }; then
    echo "boot-test $mode: ok in $(secs "$seen")s ($end): $line"
    echo "boot-test $mode: kernel command line: ${cmdline:-not seen}"
  else
    failed=1
    echo "boot-test $mode: FAILED after $(secs "$took")s ($end; want user-data sha256=$want${expect:+ and /$expect/}); got: ${line:-no EDGEFORGE-BOOT line}" >&2
    echo "boot-test $mode: kernel command line: ${cmdline:-not seen}" >&2
    echo "--- last serial output ($mode) ---" >&2
    tr -d '\r' < "$log" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | tail -n 25 >&2
    if [ -s "$work/$mode.qemu" ]; then
      echo "--- qemu ($mode) ---" >&2
      tail -n 5 "$work/$mode.qemu" >&2
    fi
  fi
done
exit $failed
