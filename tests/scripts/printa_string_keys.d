#pragma D option quiet
BEGIN { @c["bash", 2] = count(); @c["sshd", 1] = count(); @c["sshd", 1] = count(); @c["a", 3] = count(); @c["a", 3] = count(); @c["a", 3] = count(); exit(0); }
