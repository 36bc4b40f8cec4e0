import { execFile } from "node:child_process";
import { log } from "./log";

// node cannot send on a unix datagram socket, so READY=1 goes through systemd-notify. --pid names this process
// as the sender, which lets the message through the unit's default NotifyAccess=main (root may set the pid).
export function notifyReady(): Promise<void> {
  if (!process.env.NOTIFY_SOCKET) return Promise.resolve();
  return new Promise((resolve) => {
    execFile("systemd-notify", ["--ready", `--pid=${process.pid}`], (err) => {
      if (err) log("warning", `systemd-notify --ready failed: ${err.message}`);
      resolve();
    });
  });
}
