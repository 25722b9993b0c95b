//! Examples for each command's `--help`, and its manual page. Each is a
//! command line of the README's (tests/cli_text.rs holds them to it), so
//! that the two stay in step.

/// The examples of each command, by name: a command line and what it does.
const EXAMPLES: &[(&str, &[(&str, &str)])] = &[
    ("init", &[
        ("cairn init", "create the repository at $CAIRN_REPOSITORY"),
        ("cairn -r s3:https://s3.eu-central-1.amazonaws.com/my-backups/laptop init", "one in an S3 bucket"),
    ]),
    ("backup", &[
        ("cairn backup /home /etc --tag nightly", "one snapshot of both paths"),
        ("cairn backup --dry-run -e '**/target' ~/src", "what would be read, writing nothing"),
        ("cairn backup --stdin-from-command --stdin-filename mydb.sql -- pg_dump mydb", "a database dump"),
    ]),
    ("snapshots", &[
        ("cairn snapshots", "every snapshot"),
        ("cairn snapshots --host db1 --tag nightly --latest 3", "the newest three of a host and tag"),
    ]),
    ("ls", &[
        ("cairn ls latest", "every path in the newest snapshot"),
        ("cairn ls 3f2a9c1e /home/ann -l", "one directory, long format"),
    ]),
    ("restore", &[
        ("cairn restore latest --target /tmp/restore", "everything, under /tmp/restore"),
        ("cairn restore 3f2a:/home/ann/docs --target /tmp/r", "one path of a snapshot"),
    ]),
    ("cat", &[("cairn cat config", "the repository's configuration")]),
    ("diff", &[("cairn diff 3f2a9c1e latest", "what changed since a snapshot")]),
    ("find", &[("cairn find '*.conf' -i", "matching names in every snapshot")]),
    ("stats", &[("cairn stats", "sizes, deduplication and compression")]),
    ("dump", &[
        ("cairn dump latest /etc/hosts > hosts", "one file"),
        ("cairn dump latest /home/ann | tar -t", "a directory, as a tar archive"),
    ]),
    ("mount", &[
        ("cairn mount /mnt/backup", "browse every snapshot; Ctrl-C unmounts"),
        ("cairn mount --host db1 /mnt/backup", "only one host's"),
    ]),
    ("ui", &[
        ("cairn ui", "the dashboard of the policy file, on http://127.0.0.1:8470/"),
        ("cairn -r /srv/backup ui", "one repository's snapshots, without a policy"),
        ("cairn ui --listen 0.0.0.0:8470 --token-file /etc/cairn/ui-token", "reachable from elsewhere, behind a token"),
    ]),
    ("tag", &[
        ("cairn tag --add keep --remove nightly 3f2a9c1e", "change a snapshot's tags"),
        ("cairn tag --hold-until \"2027-06-30 00:00\" 1a2b3c4d", "extend a compliance hold"),
    ]),
    ("run", &[("cairn run db --force", "back up source db now, due or not")]),
    ("status", &[
        ("cairn status", "every source and repository"),
        ("cairn status --prometheus /var/lib/prometheus/node-exporter/cairn.prom", "as metrics"),
    ]),
    ("drill", &[
        ("cairn drill", "drill every source"),
        ("cairn drill db --from offsite", "from the second copy"),
        ("cairn drill --list", "the drills recorded"),
    ]),
    ("audit", &[
        ("cairn audit", "the log"),
        ("cairn audit --verify", "check that it is whole"),
    ]),
    ("runbook", &[("cairn runbook --output /srv/runbooks/RECOVERY.md", "write the runbook")]),
    ("check", &[
        ("cairn check --read-data", "structure, and every byte stored"),
        ("cairn check --read-data-subset 1/7", "a seventh of the data per run"),
    ]),
    ("forget", &[
        ("cairn forget --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --dry-run", "what a policy would remove"),
        ("cairn forget --keep-daily 7 --keep-weekly 4 --prune", "apply it, then delete unused data"),
    ]),
    ("prune", &[
        ("cairn prune --dry-run", "what would be deleted and repacked"),
        ("cairn prune --max-unused 5% --max-repack 2G", "with limits"),
    ]),
    ("repair", &[
        ("cairn repair index --read-data", "rebuild the index from the blobs that authenticate"),
        ("cairn repair snapshots", "then rewrite snapshots around what is lost"),
    ]),
    ("copy", &[
        ("cairn -r /mnt/offsite/repo copy --from-repo /srv/backup/repo --from-password-file ~/.config/cairn/pw", "every snapshot"),
        ("cairn -r @offsite copy --from-repo @local latest", "the newest, between repositories of the policy file"),
    ]),
    ("unlock", &[
        ("cairn unlock", "remove the records of sessions that are over"),
        ("cairn unlock --session 3f2a", "one session known to be gone"),
    ]),
    ("key", &[
        ("cairn key add --new-password-file pw2", "another password"),
        ("cairn key add --put-only --machine /etc/cairn/backup-host.key", "a key that backs up but reads nothing"),
        ("cairn key rotate --rewrite", "new keys, and the data sealed again"),
    ]),
    ("pg", &[("cairn pg list", "the clusters, their base backups and WAL")]),
    ("generate", &[
        ("cairn generate completions bash > ~/.local/share/bash-completion/completions/cairn", "bash completions"),
        ("cairn generate man ~/.local/share/man/man1", "manual pages"),
    ]),
];

/// `command` with the examples of each of its subcommands after their help.
pub fn add(command: clap::Command) -> clap::Command {
    EXAMPLES.iter().fold(command, |command, (name, examples)| {
        let text: String = examples
            .iter()
            .map(|(line, what)| format!("\n  # {what}\n  {line}"))
            .collect();
        command.mut_subcommand(name, |sub| sub.after_help(format!("Examples:{text}")))
    })
}
