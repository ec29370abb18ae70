use super::*;

fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(typ);
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_owned()));
    r
}

/// Docker's default: deny everything, then allow the usual devices.
fn docker_like() -> Vec<LinuxDeviceCgroup> {
    vec![
        rule(false, None, None, None, "rwm"),
        rule(true, Some(LinuxDeviceType::C), Some(1), Some(3), "rwm"),
        rule(true, Some(LinuxDeviceType::C), Some(1), Some(5), "rwm"),
        rule(true, Some(LinuxDeviceType::C), Some(136), None, "rwm"),
        rule(true, Some(LinuxDeviceType::C), None, None, "m"),
    ]
}

#[test]
fn normalize_defaults_and_wildcards() {
    let r = normalize(&[rule(true, None, Some(-1), None, "")]).unwrap();
    assert_eq!(
        r,
        vec![DeviceRule {
            allow: true,
            kind: DevKind::All,
            major: None,
            minor: None,
            access: ACC_ALL
        }]
    );
    assert!(normalize(&[rule(true, None, None, None, "rx")]).is_err());
    assert!(normalize(&[rule(true, Some(LinuxDeviceType::C), Some(-7), None, "r")]).is_err());
    // FIFO rules are dropped.
    assert!(
        normalize(&[rule(true, Some(LinuxDeviceType::P), None, None, "rwm")])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn v1_lines_replay_in_order_from_deny_all() {
    let lines = v1_writes(&normalize(&docker_like()).unwrap());
    let got: Vec<(&str, &str)> = lines.iter().map(|(f, l)| (f.name(), l.as_str())).collect();
    assert_eq!(
        got,
        vec![
            ("devices.deny", "a *:* rwm"),
            ("devices.allow", "c 1:3 rwm"),
            ("devices.allow", "c 1:5 rwm"),
            ("devices.allow", "c 136:* rwm"),
            ("devices.allow", "c *:* m"),
        ]
    );
}

#[test]
fn v1_partial_all_type_rules_split_into_char_and_block() {
    let lines = v1_writes(
        &normalize(&[rule(false, Some(LinuxDeviceType::A), Some(8), None, "w")]).unwrap(),
    );
    let got: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(got, vec!["c 8:* w", "b 8:* w"]);
    assert!(lines.iter().all(|(f, _)| *f == V1File::Deny));
}

#[test]
fn bpf_deny_all_only() {
    let p = bpf_program(&normalize(&[rule(false, None, None, None, "rwm")]).unwrap());
    // Prologue, then the unconditional `r0 = 0; exit`; no fallthrough tail.
    assert_eq!(p.len(), PROLOGUE_LEN + 2);
    assert_eq!(p[PROLOGUE_LEN], BpfInsn::new(ALU32_MOV_K, R0, 0, 0, 0));
    assert_eq!(p[PROLOGUE_LEN + 1].code, JMP_EXIT);
}

#[test]
fn bpf_docker_like_structure() {
    let p = bpf_program(&normalize(&docker_like()).unwrap());
    // Rules run last-first: `c *:* m` (type, 3 access insns, verdict) = 6,
    // `c 136:* rwm` (type, major, verdict) = 4, `c 1:5` and `c 1:3`
    // (type, major, minor, verdict) = 5 each, then the deny-all = 2, which
    // matches everything, so no trailing default.
    assert_eq!(p.len(), PROLOGUE_LEN + 6 + 4 + 5 + 5 + 2);
    let first = &p[PROLOGUE_LEN..PROLOGUE_LEN + 6];
    assert_eq!(first[0], BpfInsn::new(JMP_JNE_K, R2, 0, 5, DEV_CHAR));
    assert_eq!(first[1], BpfInsn::new(ALU32_MOV_X, R1, R3, 0, 0));
    // Allow `m` only: any of r or w requested is a mismatch.
    assert_eq!(
        first[2],
        BpfInsn::new(
            ALU32_AND_K,
            R1,
            0,
            0,
            i32::try_from(ACC_READ | ACC_WRITE).unwrap()
        )
    );
    assert_eq!(first[3], BpfInsn::new(JMP_JNE_K, R1, 0, 2, 0));
    assert_eq!(first[4], BpfInsn::new(ALU32_MOV_K, R0, 0, 0, 1));
    assert_eq!(first[5].code, JMP_EXIT);
    let b = &p[PROLOGUE_LEN + 10..PROLOGUE_LEN + 15]; // c 1:5
    assert_eq!(b[1], BpfInsn::new(JMP_JNE_K, R4, 0, 3, 1));
    assert_eq!(b[2], BpfInsn::new(JMP_JNE_K, R5, 0, 2, 5));
    assert_eq!(*p.last().unwrap(), BpfInsn::new(JMP_EXIT, 0, 0, 0, 0));
    assert_eq!(p[p.len() - 2], BpfInsn::new(ALU32_MOV_K, R0, 0, 0, 0));
}

#[test]
fn bpf_allow_all_then_deny_one() {
    let rules = [
        rule(true, None, None, None, "rwm"),
        rule(false, Some(LinuxDeviceType::C), Some(1), Some(7), "w"),
    ];
    let p = bpf_program(&normalize(&rules).unwrap());
    // deny c 1:7 w: type, mov, and, jeq, major, minor, verdict(2) = 8; then allow-all = 2.
    assert_eq!(p.len(), PROLOGUE_LEN + 8 + 2);
    let d = &p[PROLOGUE_LEN..PROLOGUE_LEN + 8];
    assert_eq!(
        d[2],
        BpfInsn::new(ALU32_AND_K, R1, 0, 0, i32::try_from(ACC_WRITE).unwrap())
    );
    assert_eq!(d[3], BpfInsn::new(JMP_JEQ_K, R1, 0, 4, 0));
    assert_eq!(d[6], BpfInsn::new(ALU32_MOV_K, R0, 0, 0, 0));
    assert_eq!(p[PROLOGUE_LEN + 8], BpfInsn::new(ALU32_MOV_K, R0, 0, 0, 1));
}

#[test]
fn bpf_empty_list_denies_everything() {
    let p = bpf_program(&[]);
    assert_eq!(p.len(), PROLOGUE_LEN + 2);
    assert_eq!(p[PROLOGUE_LEN], BpfInsn::new(ALU32_MOV_K, R0, 0, 0, 0));
}

/// Interprets a generated program the way the kernel would, for one access.
/// Every instruction it uses is 32-bit, so the registers are too.
fn run(prog: &[BpfInsn], dev_type: u32, access: u32, major: u32, minor: u32) -> u32 {
    let ctx = [dev_type | (access << 16), major, minor];
    let mut r = [0u32; 11];
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        let (d, s) = (usize::from(i.dst()), usize::from(i.src()));
        let imm = i.imm.cast_unsigned();
        pc += 1;
        match i.code {
            LDX_W_MEM => r[d] = ctx[usize::try_from(i.off).unwrap() / 4],
            ALU32_AND_K => r[d] &= imm,
            ALU32_RSH_K => r[d] >>= imm,
            ALU32_MOV_X => r[d] = r[s],
            ALU32_MOV_K => r[d] = imm,
            JMP_JNE_K if r[d] != imm => pc += usize::try_from(i.off).unwrap(),
            JMP_JEQ_K if r[d] == imm => pc += usize::try_from(i.off).unwrap(),
            JMP_JNE_K | JMP_JEQ_K => {}
            JMP_EXIT => return r[0],
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
}

#[test]
fn bpf_semantics_last_match_wins() {
    let char_ = u32::try_from(DEV_CHAR).unwrap();
    let block = u32::try_from(DEV_BLOCK).unwrap();
    let p = bpf_program(&normalize(&docker_like()).unwrap());
    assert_eq!(
        run(&p, char_, ACC_READ | ACC_WRITE, 1, 3),
        1,
        "/dev/null rw"
    );
    assert_eq!(run(&p, char_, ACC_READ, 1, 7), 0, "/dev/full r");
    assert_eq!(
        run(&p, char_, ACC_MKNOD, 1, 7),
        1,
        "mknod of any char device"
    );
    assert_eq!(
        run(&p, block, ACC_MKNOD, 8, 0),
        0,
        "mknod of a block device"
    );
    assert_eq!(run(&p, char_, ACC_WRITE, 136, 4), 1, "pty");

    let rules = [
        rule(true, None, None, None, "rwm"),
        rule(false, Some(LinuxDeviceType::C), Some(1), Some(7), "w"),
    ];
    let p = bpf_program(&normalize(&rules).unwrap());
    assert_eq!(
        run(&p, char_, ACC_READ, 1, 7),
        1,
        "read of /dev/full is still allowed"
    );
    assert_eq!(
        run(&p, char_, ACC_READ | ACC_WRITE, 1, 7),
        0,
        "rw open hits the write deny"
    );
    assert_eq!(
        run(&p, block, ACC_WRITE, 1, 7),
        1,
        "block 1:7 is another device"
    );

    // Later allow overrides an earlier deny.
    let rules = [
        rule(false, Some(LinuxDeviceType::C), Some(1), None, "rwm"),
        rule(true, Some(LinuxDeviceType::C), Some(1), Some(3), "r"),
    ];
    let p = bpf_program(&normalize(&rules).unwrap());
    assert_eq!(run(&p, char_, ACC_READ, 1, 3), 1);
    assert_eq!(
        run(&p, char_, ACC_READ | ACC_WRITE, 1, 3),
        0,
        "allow r does not cover rw"
    );
    assert_eq!(
        run(&p, char_, ACC_READ, 5, 0),
        0,
        "unmatched accesses are denied"
    );
}
