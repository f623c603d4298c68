// Sending email: over SMTP when SMTP_URL is set; otherwise (development) each message is
// written as an .eml file to MAIL_DIRECTORY, and the log says where.
import fs from "node:fs";
import path from "node:path";
import nodemailer from "nodemailer";
import type { Logger } from "pino";
import type { Config } from "../config";

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  send(message: MailMessage): Promise<void>;
  close(): void;
}

export function createMailer(config: Config["mail"], logger: Logger): Mailer {
  if (config.smtpUrl) {
    const transport = nodemailer.createTransport(config.smtpUrl);
    return {
      send: async (message) => {
        await transport.sendMail({ from: config.from, ...message });
      },
      close: () => transport.close(),
    };
  }
  const directory = path.resolve(config.directory);
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true });
  logger.info({ directory }, "SMTP_URL is not set: emails are written as .eml files to this folder");
  return {
    send: async (message) => {
      const info = await transport.sendMail({ from: config.from, ...message });
      fs.mkdirSync(directory, { recursive: true });
      const file = path.join(directory, `${new Date().toISOString().replace(/[:.]/g, "-")}-${info.messageId.replace(/[^A-Za-z0-9.-]/g, "")}.eml`);
      fs.writeFileSync(file, info.message as Buffer);
      logger.info({ file, subject: message.subject }, "email written to file");
    },
    close: () => transport.close(),
  };
}
