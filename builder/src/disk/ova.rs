//! The OVA: a ustar archive of an OVF 1.0 descriptor (first, as VMware and
//! VirtualBox require), the streamOptimized VMDK it references, and a `.mf`
//! manifest with each file's SHA256, as `ovftool` writes them. The virtual
//! hardware: the definition's CPUs and memory, EFI or BIOS firmware, an LSI
//! Logic SCSI controller holding the disk, an E1000 NIC.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::{fail, Category};
use crate::io::{file_sha256, HashingWriter, Sha256Digest};

use super::Firmware;

/// What the OVF says about the appliance.
pub struct Appliance<'a> {
    /// The OVA's file stem, also the virtual machine's name.
    pub name: &'a str,
    /// "Palette Edge <os> <version> <k8s distribution> <k8s version>", as the menu titles it.
    pub product: String,
    pub version: &'a str,
    pub full_version: &'a str,
    pub cpus: u32,
    pub memory_mib: u32,
    pub firmware: Firmware,
    /// The disk's virtual size in bytes.
    pub capacity: u64,
}

/// The longest member name a ustar header holds without a `/` to split at.
pub const MAX_NAME: usize = 100;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The OVF descriptor for `a` with the VMDK `vmdk_name` of `vmdk_size` bytes.
pub fn descriptor(a: &Appliance, vmdk_name: &str, vmdk_size: u64) -> String {
    let name = escape(a.name);
    let firmware = match a.firmware {
        Firmware::Efi => "efi",
        Firmware::Bios => "bios",
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by edgeforge -->
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="{vmdk}" ovf:id="file1" ovf:size="{vmdk_size}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{capacity}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The logical networks</Info>
    <Network ovf:name="VM Network">
      <Description>The VM Network network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A Kairos-style edge appliance</Info>
    <Name>{name}</Name>
    <ProductSection>
      <Info>The appliance's product and version</Info>
      <Product>{product}</Product>
      <Version>{version}</Version>
      <FullVersion>{full_version}</FullVersion>
    </ProductSection>
    <OperatingSystemSection ovf:id="101" vmw:osType="other5xLinux64Guest">
      <Info>The guest operating system</Info>
      <Description>Other Linux (64-bit)</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{name}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-14</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of virtual CPUs</rasd:Description>
        <rasd:ElementName>{cpus} virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>{cpus}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory size</rasd:Description>
        <rasd:ElementName>{memory} MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>{memory}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI controller</rasd:Description>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:Description>E1000 ethernet adapter on "VM Network"</rasd:Description>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>E1000</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="{firmware}"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"#,
        vmdk = escape(vmdk_name),
        capacity = a.capacity,
        product = escape(&a.product),
        version = escape(a.version),
        full_version = escape(a.full_version),
        cpus = a.cpus,
        memory = a.memory_mib,
    )
}

/// Writes the OVA into `out`: `<name>.ovf`, the VMDK (named as in the
/// descriptor), `<name>.mf`. Returns the OVA's digest.
pub fn write(
    out: &mut File,
    a: &Appliance,
    vmdk: &Path,
    epoch: u64,
) -> anyhow::Result<Sha256Digest> {
    let vmdk_name = crate::provider::file_name(vmdk);
    let vmdk_size = std::fs::metadata(vmdk)
        .with_context(|| format!("reading {}", vmdk.display()))?
        .len();
    let ovf = descriptor(a, &vmdk_name, vmdk_size);
    pack(out, &format!("{}.ovf", a.name), &ovf, vmdk, epoch)
}

/// The tar: the OVF, the VMDK, the manifest (named after the OVF).
fn pack(
    out: &mut File,
    ovf_name: &str,
    ovf: &str,
    vmdk: &Path,
    epoch: u64,
) -> anyhow::Result<Sha256Digest> {
    let ctx = || format!("writing the OVA of {ovf_name}");
    let vmdk_name = crate::provider::file_name(vmdk);
    let vmdk_size = std::fs::metadata(vmdk).with_context(ctx)?.len();
    let (vmdk_sha, _) = file_sha256(vmdk).with_context(ctx)?;
    let mf = format!(
        "SHA256({ovf_name})= {}\nSHA256({vmdk_name})= {vmdk_sha}\n",
        Sha256Digest::of(ovf.as_bytes())
    );
    let mf_name = format!("{}.mf", ovf_name.strip_suffix(".ovf").unwrap_or(ovf_name));
    let mut tar = tar::Builder::new(HashingWriter::new(io::BufWriter::new(out)));
    let header = |size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(epoch);
        h.set_entry_type(tar::EntryType::Regular);
        h
    };
    tar.append_data(&mut header(ovf.len() as u64), ovf_name, ovf.as_bytes())
        .with_context(ctx)?;
    let f = File::open(vmdk).with_context(ctx)?;
    tar.append_data(&mut header(vmdk_size), &vmdk_name, f)
        .with_context(ctx)?;
    tar.append_data(&mut header(mf.len() as u64), &mf_name, mf.as_bytes())
        .with_context(ctx)?;
    let sink = tar.into_inner().with_context(ctx)?;
    let (digest, _, mut w) = sink.finish();
    w.flush().with_context(ctx)?;
    Ok(digest)
}

/// A golden OVA's descriptor and VMDK (extracted), for `disk embed`.
pub struct Parts {
    pub ovf_name: String,
    pub ovf: String,
    pub vmdk_name: String,
    pub vmdk: PathBuf,
    pub vmdk_size: u64,
    pub epoch: u64,
}

/// Reads an OVA: the OVF first, then the VMDK (extracted into `dir`).
pub fn read(ova: &Path, dir: &Path) -> anyhow::Result<Parts> {
    let bad = |why: String| {
        fail(
            Category::InvalidInput,
            format!("{} is not an OVA edgeforge wrote: {why}", ova.display()),
        )
    };
    let mut archive =
        tar::Archive::new(File::open(ova).with_context(|| format!("opening {}", ova.display()))?);
    let mut entries = archive
        .entries()
        .with_context(|| format!("reading {}", ova.display()))?;
    let mut next = || -> anyhow::Result<(String, tar::Entry<'_, File>)> {
        let e = entries
            .next()
            .ok_or_else(|| bad("it ends early".into()))?
            .with_context(|| format!("reading {}", ova.display()))?;
        let name = e.path()?.to_string_lossy().into_owned();
        Ok((name, e))
    };
    let (ovf_name, mut e) = next()?;
    if !ovf_name.ends_with(".ovf") || ovf_name.contains('/') {
        return Err(bad(format!("its first member is {ovf_name}, not the .ovf")));
    }
    let epoch = e.header().mtime()?;
    let mut ovf = String::new();
    e.read_to_string(&mut ovf)
        .with_context(|| format!("reading {ovf_name}"))?;
    let (vmdk_name, mut e) = next()?;
    if !vmdk_name.ends_with(".vmdk") || vmdk_name.contains('/') {
        return Err(bad(format!(
            "its second member is {vmdk_name}, not the .vmdk"
        )));
    }
    let vmdk = dir.join(&vmdk_name);
    let mut f = File::create(&vmdk).with_context(|| format!("creating {}", vmdk.display()))?;
    let vmdk_size = io::copy(&mut e, &mut f).with_context(|| format!("extracting {vmdk_name}"))?;
    Ok(Parts {
        ovf_name,
        ovf,
        vmdk_name,
        vmdk,
        vmdk_size,
        epoch,
    })
}

/// Writes `parts`' OVA again around `vmdk` (same name): the OVF's size of
/// the file updated, a new manifest.
pub fn rewrite(out: &mut File, parts: &Parts, vmdk: &Path) -> anyhow::Result<Sha256Digest> {
    let size = std::fs::metadata(vmdk)?.len();
    let old = format!("ovf:size=\"{}\"", parts.vmdk_size);
    if !parts.ovf.contains(&old) {
        return Err(fail(
            Category::InvalidInput,
            format!(
                "{}: the OVF does not give its VMDK's size as {old}",
                parts.ovf_name
            ),
        ));
    }
    let ovf = parts.ovf.replacen(&old, &format!("ovf:size=\"{size}\""), 1);
    pack(out, &parts.ovf_name, &ovf, vmdk, parts.epoch)
}
