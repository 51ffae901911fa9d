#!/usr/bin/env bash
# ISO benchmark: `edgeforge iso --rootfs` against the bare tool pipeline it
# wraps (grub-mkimage, mtools, mksquashfs, xorriso, sha256sum with the same
# arguments, run by hand) on the same rootfs, in one run. Prints the ratio
# (target <= 1.05).
#   scripts/bench-iso.sh [SIZE_MIB] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
size_mib=${1:-1024}
rounds=${2:-2}
bench=$PWD/target/bench
bash scripts/bench-layer.sh "$size_mib" 0 >/dev/null   # makes the tree only
bash scripts/make-demo-base.sh >/dev/null
cargo build --release --locked -q
bin=$PWD/target/release/edgeforge
export SOURCE_DATE_EPOCH=1700000000

# The rootfs: the demo base plus the payload tree, hard-linked (no copy).
rootfs=$bench/iso-rootfs
rm -rf "$rootfs"
"$bin" -q unpack .cache/demo-base --out "$rootfs" >/dev/null
mkdir -p "$rootfs/opt"
cp -al "$bench/tree-$size_mib" "$rootfs/opt/payload"
ud=$bench/user-data.yaml
printf '#cloud-config\nstylus:\n  site:\n    name: bench\n' > "$ud"


edgeforge_iso() {
  rm -rf "$bench/ef"
  "$bin" -q iso images/demo-busybox.yaml --rootfs "$rootfs" --user-data "$ud" --out "$bench/ef"
}

bare_pipeline() {
  local w=$bench/bare mods="normal configfile linux search search_fs_file search_label echo test ls cat serial terminal iso9660 part_gpt part_msdos fat gzio true sleep reboot halt"
  rm -rf "$w" && mkdir -p "$w/iso/boot/grub2" "$w/iso/boot/grub" "$w/iso/EFI/BOOT"
  printf 'search --no-floppy --file --set=root /boot/kernel\nset prefix=($root)/boot/grub2\n' > "$w/early.cfg"
  { cat "$w/early.cfg"; echo 'configfile $prefix/grub.cfg'; } > "$w/stub.cfg"
  cp "$w/stub.cfg" "$w/iso/boot/grub/grub.cfg"; cp "$w/stub.cfg" "$w/iso/EFI/BOOT/grub.cfg"
  echo 'menuentry install { linux /boot/kernel ; initrd /boot/initrd }' > "$w/iso/boot/grub2/grub.cfg"
  ln "$(readlink -f "$rootfs/boot/vmlinuz")" "$w/iso/boot/kernel"
  ln "$(readlink -f "$rootfs/boot/initrd")" "$w/iso/boot/initrd"
  cp "$ud" "$w/iso/config.yaml"
  grub-mkimage -O i386-pc-eltorito -c "$w/early.cfg" -p /boot/grub2 -o "$w/iso/boot/eltorito.img" biosdisk $mods
  cp /usr/lib/grub/i386-pc/boot_hybrid.img "$w/iso/boot/"
  grub-mkimage -O x86_64-efi -c "$w/early.cfg" -p /EFI/BOOT -o "$w/bootx64.efi" efi_gop all_video $mods
  mformat -C -i "$w/iso/boot/uefi.img" -T 4096 -h 64 -s 32 -v EFI_LIVE -N 6553F100 ::
  mmd -i "$w/iso/boot/uefi.img" ::/EFI ::/EFI/BOOT ::/boot ::/boot/grub
  mcopy -i "$w/iso/boot/uefi.img" "$w/bootx64.efi" ::/EFI/BOOT/bootx64.efi
  mcopy -i "$w/iso/boot/uefi.img" "$w/stub.cfg" ::/EFI/BOOT/grub.cfg
  mcopy -i "$w/iso/boot/uefi.img" "$w/stub.cfg" ::/boot/grub/grub.cfg
  env -u SOURCE_DATE_EPOCH mksquashfs "$rootfs" "$w/iso/rootfs.squashfs" -noappend -b 1M -comp zstd -Xcompression-level 3 \
    -mkfs-time "$SOURCE_DATE_EPOCH" -all-time "$SOURCE_DATE_EPOCH" -no-progress -quiet
  xorriso -report_about SORRY -outdev "$w/out.iso" -volid COS_LIVE -joliet on -padding 0 -volume_date all_file_dates "=$SOURCE_DATE_EPOCH" \
    -map "$w/iso" / -chmod 0755 / -- -boot_image grub bin_path=/boot/eltorito.img -boot_image grub grub2_mbr="$w/iso/boot/boot_hybrid.img" \
    -boot_image grub grub2_boot_info=on -boot_image any partition_offset=16 -boot_image any cat_path=/boot/boot.catalog -boot_image any cat_hidden=on \
    -boot_image any boot_info_table=on -boot_image any platform_id=0x00 -boot_image any emul_type=no_emulation -boot_image any load_size=2048 \
    -append_partition 2 0xef "$w/iso/boot/uefi.img" -boot_image any next -boot_image any efi_path=--interval:appended_partition_2:all:: \
    -boot_image any platform_id=0xef -boot_image any emul_type=no_emulation -boot_image any appended_part_as=gpt -boot_image any mbr_force_bootable=on
  sha256sum "$w/out.iso"
}

best_bare=999999; best_ef=999999
for i in $(seq "$rounds"); do
  sync
  b=$(secs bare_pipeline)
  e=$(secs edgeforge_iso)
  echo "round $i: bare tool pipeline ${b}s, edgeforge iso ${e}s"
  best_bare=$(min "$b" "$best_bare")
  best_ef=$(min "$e" "$best_ef")
done
ratio=$(ratio "$best_ef" "$best_bare")
echo "best: bare ${best_bare}s, edgeforge ${best_ef}s, ratio ${ratio} (target <= 1.05)"
echo "ISO sizes: bare $(stat -c %s "$bench/bare/out.iso"), edgeforge $(stat -c %s "$bench/ef/palette-edge-installer.iso") bytes"
