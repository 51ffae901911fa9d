#!/usr/bin/env bash
# Real-base benchmark, in one run on the Debian base (scripts/make-debian-base.sh):
#  - edgeforge's clean `build` (provider image + ISO, empty cache) against the
#    bare tools doing the ISO's job by hand on the same provider image
#    (tar -x of the oci-archive, `umoci unpack`, grub-mkimage + mtools,
#    `mksquashfs` with edgeforge's options, `xorriso`, `sha256sum`);
#    target: ratio <= 0.7;
#  - a rebuild after one overlay file changed against its floor: the
#    mksquashfs + xorriso + sha256sum that a changed root filesystem cannot
#    avoid (the tree already unpacked); target: ratio <= 1.2.
#   scripts/bench-real.sh [ROUNDS]          (best of ROUNDS, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
rounds=${1:-2}
bench=$PWD/target/bench/real
bash scripts/make-debian-base.sh >/dev/null
cargo build --release --locked -q
bin=$PWD/target/release/edgeforge
export SOURCE_DATE_EPOCH=1700000000
rm -rf "$bench" && mkdir -p "$bench/overlay"
cp -a overlays/rootfs/. "$bench/overlay/"
sed -e "s|../overlays/rootfs|$bench/overlay|" -e "s|\.\./|$PWD/|g" images/demo.yaml > "$bench/def.yaml"
ud=$PWD/images/user-data/demo.yaml
iso=palette-edge-installer.iso

edgeforge_build() {
  "$bin" -q --cache-dir "$bench/cache" build "$bench/def.yaml" --user-data "$ud" --out "$bench/out"
}

clean_build() {
  rm -rf "$bench/cache" "$bench/out"
  edgeforge_build
}

mods="normal configfile linux search search_fs_file search_label echo test ls cat serial terminal iso9660 part_gpt part_msdos fat gzio true sleep reboot halt"

# The parts of the bare ISO pipeline that do not depend on the root
# filesystem: GRUB images, the FAT image, the ISO tree. Made once, outside the timing.
prepare_iso_tree() {
  local w=$bench/bare
  rm -rf "$w" && mkdir -p "$w/iso/boot/grub2" "$w/iso/boot/grub" "$w/iso/EFI/BOOT"
  printf 'search --no-floppy --file --set=root /boot/kernel\nset prefix=($root)/boot/grub2\n' > "$w/early.cfg"
  { cat "$w/early.cfg"; echo 'configfile $prefix/grub.cfg'; } > "$w/stub.cfg"
  cp "$w/stub.cfg" "$w/iso/boot/grub/grub.cfg"; cp "$w/stub.cfg" "$w/iso/EFI/BOOT/grub.cfg"
  echo 'menuentry install { linux /boot/kernel ; initrd /boot/initrd }' > "$w/iso/boot/grub2/grub.cfg"
  cp "$ud" "$w/iso/config.yaml"
}

grub_and_fat() {
  local w=$bench/bare
  rm -f "$w/iso/boot/uefi.img"
  grub-mkimage -O i386-pc-eltorito -c "$w/early.cfg" -p /boot/grub2 -o "$w/iso/boot/eltorito.img" biosdisk $mods
  cp /usr/lib/grub/i386-pc/boot_hybrid.img "$w/iso/boot/"
  grub-mkimage -O x86_64-efi -c "$w/early.cfg" -p /EFI/BOOT -o "$w/bootx64.efi" efi_gop all_video $mods
  mformat -C -i "$w/iso/boot/uefi.img" -T 4096 -h 64 -s 32 -v EFI_LIVE -N 6553F100 ::
  mmd -i "$w/iso/boot/uefi.img" ::/EFI ::/EFI/BOOT ::/boot ::/boot/grub
  mcopy -i "$w/iso/boot/uefi.img" "$w/bootx64.efi" ::/EFI/BOOT/bootx64.efi
  mcopy -i "$w/iso/boot/uefi.img" "$w/stub.cfg" ::/EFI/BOOT/grub.cfg
  mcopy -i "$w/iso/boot/uefi.img" "$w/stub.cfg" ::/boot/grub/grub.cfg
}

# What a changed root filesystem cannot avoid: squashfs, ISO, hash.
squash_iso_hash() {
  local w=$bench/bare rootfs=$bench/bare/bundle/rootfs
  rm -f "$w/iso/rootfs.squashfs" "$w/iso/boot/kernel" "$w/iso/boot/initrd" "$w/out.iso"
  ln "$(readlink -f "$rootfs/boot/vmlinuz")" "$w/iso/boot/kernel"
  ln "$(readlink -f "$rootfs/boot/initrd")" "$w/iso/boot/initrd"
  env -u SOURCE_DATE_EPOCH mksquashfs "$rootfs" "$w/iso/rootfs.squashfs" -noappend -b 1M -comp zstd -Xcompression-level 3 \
    -mkfs-time "$SOURCE_DATE_EPOCH" -xattrs -no-progress -quiet
  xorriso -report_about SORRY -outdev "$w/out.iso" -volid COS_LIVE -joliet on -padding 0 -volume_date all_file_dates "=$SOURCE_DATE_EPOCH" \
    -map "$w/iso" / -chmod 0755 / -- -boot_image grub bin_path=/boot/eltorito.img -boot_image grub grub2_mbr="$w/iso/boot/boot_hybrid.img" \
    -boot_image grub grub2_boot_info=on -boot_image any partition_offset=16 -boot_image any cat_path=/boot/boot.catalog -boot_image any cat_hidden=on \
    -boot_image any boot_info_table=on -boot_image any platform_id=0x00 -boot_image any emul_type=no_emulation -boot_image any load_size=2048 \
    -append_partition 2 0xef "$w/iso/boot/uefi.img" -boot_image any next -boot_image any efi_path=--interval:appended_partition_2:all:: \
    -boot_image any platform_id=0xef -boot_image any emul_type=no_emulation -boot_image any appended_part_as=gpt -boot_image any mbr_force_bootable=on
  sha256sum "$w/out.iso"
}

bare_pipeline() {
  local w=$bench/bare archive
  archive=$(ls "$bench"/out/*.oci.tar | head -n1)
  rm -rf "$w/layout" "$w/bundle" && mkdir -p "$w/layout"
  tar -xf "$archive" -C "$w/layout"
  umoci unpack --image "$w/layout:$(tag_of "$w/layout")" "$w/bundle"
  grub_and_fat
  squash_iso_hash
}

tag_of() {
  sed -n 's/.*"org.opencontainers.image.ref.name":"\([^"]*\)".*/\1/p' "$1/index.json"
}

clean_build  # warm the page cache and make the provider image the bare pipeline unpacks
prepare_iso_tree
best_bare=999999 best_clean=999999 best_re=999999 best_floor=999999
for i in $(seq "$rounds"); do
  sync
  b=$(secs bare_pipeline)
  c=$(secs clean_build)
  echo "change $i" > "$bench/overlay/etc/motd"
  r=$(secs edgeforge_build)
  f=$(secs squash_iso_hash)
  echo "round $i: bare ${b}s, edgeforge clean ${c}s, rebuild after one overlay file ${r}s, floor ${f}s"
  best_bare=$(min "$b" "$best_bare"); best_clean=$(min "$c" "$best_clean")
  best_re=$(min "$r" "$best_re"); best_floor=$(min "$f" "$best_floor")
done
echo "clean build: edgeforge ${best_clean}s / bare tools ${best_bare}s = $(ratio "$best_clean" "$best_bare") (target <= 0.7)"
echo "rebuild: edgeforge ${best_re}s / floor ${best_floor}s = $(ratio "$best_re" "$best_floor") (target <= 1.2)"
echo "sizes: ISO edgeforge $(stat -c %s "$bench/out/$iso"), bare $(stat -c %s "$bench/bare/out.iso") bytes"
