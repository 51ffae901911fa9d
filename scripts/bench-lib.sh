# Shared by scripts/bench-*.sh (sourced): wall time of a command, minimum, ratio.
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", e - s }'; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b) ? a : b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

# The bare tool pipeline an edgeforge ISO is measured against (bench-iso.sh,
# bench-real.sh): the same commands and options, run by hand.
bare_mods="normal configfile linux search search_fs_file search_label echo test ls cat serial terminal iso9660 part_gpt part_msdos fat gzio true sleep reboot halt"

# bare_iso_tree W USER_DATA: GRUB configs and the user-data in W/iso.
bare_iso_tree() {
  local w=$1
  rm -rf "$w/iso" && mkdir -p "$w/iso/boot/grub2" "$w/iso/boot/grub" "$w/iso/EFI/BOOT"
  printf 'search --no-floppy --file --set=root /boot/kernel\nset prefix=($root)/boot/grub2\n' > "$w/early.cfg"
  { cat "$w/early.cfg"; echo 'configfile $prefix/grub.cfg'; } > "$w/stub.cfg"
  cp "$w/stub.cfg" "$w/iso/boot/grub/grub.cfg"; cp "$w/stub.cfg" "$w/iso/EFI/BOOT/grub.cfg"
  echo 'menuentry install { linux /boot/kernel ; initrd /boot/initrd }' > "$w/iso/boot/grub2/grub.cfg"
  cp "$2" "$w/iso/config.yaml"
}

# bare_boot_images W: GRUB's El Torito and EFI images and the FAT image.
bare_boot_images() {
  local w=$1
  rm -f "$w/iso/boot/uefi.img"
  grub-mkimage -O i386-pc-eltorito -c "$w/early.cfg" -p /boot/grub2 -o "$w/iso/boot/eltorito.img" biosdisk $bare_mods
  cp /usr/lib/grub/i386-pc/boot_hybrid.img "$w/iso/boot/"
  grub-mkimage -O x86_64-efi -c "$w/early.cfg" -p /EFI/BOOT -o "$w/bootx64.efi" efi_gop all_video $bare_mods
  mformat -C -i "$w/iso/boot/uefi.img" -T 4096 -h 64 -s 32 -v EFI_LIVE -N 6553F100 ::
  mmd -i "$w/iso/boot/uefi.img" ::/EFI ::/EFI/BOOT ::/boot ::/boot/grub
  mcopy -i "$w/iso/boot/uefi.img" "$w/bootx64.efi" ::/EFI/BOOT/bootx64.efi
  mcopy -i "$w/iso/boot/uefi.img" "$w/stub.cfg" ::/EFI/BOOT/grub.cfg
  mcopy -i "$w/iso/boot/uefi.img" "$w/stub.cfg" ::/boot/grub/grub.cfg
}

# bare_squash_iso W ROOTFS: kernel and initrd linked in, mksquashfs with
# edgeforge's options, xorriso with its boot records, sha256sum of the ISO.
bare_squash_iso() {
  local w=$1 rootfs=$2
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
