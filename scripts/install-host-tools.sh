#!/usr/bin/env bash
# Installs the Debian packages edgeforge drives or is tested against.
# Idempotent: packages already present are skipped, so CI pays only once per machine.
set -euo pipefail

# Tools the builder runs, and the interop/boot checks the test suite runs.
packages=(
  skopeo umoci            # OCI interop checks
  busybox-static          # demo base image shell
  xorriso squashfs-tools  # ISO and rootfs.squashfs
  mtools dosfstools       # FAT EFI image
  grub-pc-bin grub-efi-amd64-bin grub-common  # BIOS and UEFI GRUB images
  qemu-system-x86 ovmf    # boot checks
  cpio                    # demo initramfs
  mmdebstrap libcap2-bin  # Debian base fixture (scripts/make-debian-base.sh) and its getcap check
  genisoimage             # isoinfo: site user-data media checked against mkisofs's
  gnupg                   # OpenPGP release signatures (sign, verify --key)
  python3-venv            # the venv of scripts/make-schema-venv.sh (SBOM schema checks)
  docker-registry apache2-utils  # tests/registry.rs: a TLS registry with htpasswd (bcrypt) logins
  pigz zstd               # layer compression: the benchmark's pigz, `zstd -t` on zstd layers
  groff-base              # groff: the man pages of `man --out` format without warnings
  openssl efitools        # Secure Boot keys: certificates, EFI signature lists, .auth (keys generate)
  binutils osslsigncode   # UKIs: objcopy assembles them, osslsigncode signs them (boot: uki)
  sbsigntool              # sbverify: the tests check signed UKIs and systemd-boot with it
  systemd-boot-efi        # systemd-boot and the UKI stub when the image carries none
  e2fsprogs qemu-utils    # appliance disks: ext4 partitions (mke2fs -d, debugfs), qcow2/VMDK/OVA (qemu-img)
  fdisk gdisk             # disk checks: sfdisk --json reads the GPT, sgdisk -v verifies it
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "host tools: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "host tools: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "host tools: installed ${#missing[@]} packages"
