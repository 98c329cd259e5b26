#!/usr/bin/env node
// The tests use real tools, not mocks: gh, git, openssl, sqlite3, zstd, tar and Chromium. Install the missing
// ones with apt when we can (root on Debian/Ubuntu); otherwise say exactly what to install.
import { spawnSync } from 'node:child_process';

const TOOLS = { gh: 'gh', git: 'git', openssl: 'openssl', sqlite3: 'sqlite3', zstd: 'zstd', tar: 'tar', chromium: 'chromium', sha256sum: 'coreutils' };
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const missing = Object.entries(TOOLS).filter(([cmd]) => !has(cmd));
if (missing.length === 0) process.exit(0);

const packages = [...new Set(missing.map(([, pkg]) => pkg))];
const isRoot = process.getuid?.() === 0;
if (isRoot && has('apt-get')) {
  process.stderr.write(`installing test tools: ${packages.join(' ')}\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0;
  if (run(['update', '-qq']) && run(['install', '-y', '-qq', ...packages])) process.exit(0);
}
process.stderr.write(
  `The tests need these tools on PATH: ${missing.map(([c]) => c).join(', ')}.\n` +
    `Install them, e.g.: sudo apt-get install -y ${packages.join(' ')}\n`,
);
process.exit(1);
