import fs from 'node:fs';

/** Steps to install gh on this machine, by OS and package manager. Pure apart from reading os-release. */
export function ghInstallSteps(platform: NodeJS.Platform, osRelease: string | null = readOsRelease()): string[] {
  if (platform === 'darwin') return ['Install Homebrew if it is missing (https://brew.sh).', 'Run: brew install gh'];
  if (platform === 'win32') return ['Run in PowerShell: winget install --id GitHub.cli', 'Open a new terminal so gh is on PATH.'];
  const id = /^ID_LIKE=(.*)$/m.exec(osRelease ?? '')?.[1] ?? '';
  const own = /^ID=(.*)$/m.exec(osRelease ?? '')?.[1] ?? '';
  const family = `${own} ${id}`.replace(/"/g, '');
  if (/debian|ubuntu/.test(family)) return ['Run: sudo apt-get update && sudo apt-get install -y gh', 'If the package is too old or missing, follow https://github.com/cli/cli/blob/trunk/docs/install_linux.md'];
  if (/fedora|rhel|centos/.test(family)) return ['Run: sudo dnf install -y gh'];
  if (/arch/.test(family)) return ['Run: sudo pacman -S github-cli'];
  if (/alpine/.test(family)) return ['Run: sudo apk add github-cli'];
  return ['Install the GitHub CLI for your distribution: https://github.com/cli/cli#installation'];
}

function readOsRelease(): string | null {
  try {
    return fs.readFileSync('/etc/os-release', 'utf8');
  } catch {
    return null;
  }
}
