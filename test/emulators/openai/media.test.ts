import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digest, gif, pdf, png } from '../../fixtures/media.ts';
import { createOpenAIEmulator, type OpenAIEmulator } from './index.ts';
import { openAISpecValidator } from './spec-validator.ts';

const spec = openAISpecValidator();
const red = png([255, 0, 0]);
const blue = png([0, 0, 255]);
const doc = pdf('report');
const dataUrl = (mime: string, bytes: Buffer) => `data:${mime};base64,${bytes.toString('base64')}`;

let emu: OpenAIEmulator;
let client: OpenAI;
beforeAll(async () => {
  emu = await createOpenAIEmulator();
  client = new OpenAI({ baseURL: emu.baseURL, apiKey: emu.apiKey, maxRetries: 0 });
});
afterAll(() => emu.close());

const imagePart = (bytes: Buffer, detail: 'low' | 'auto' = 'auto') =>
  ({ type: 'input_image', image_url: dataUrl('image/png', bytes), detail }) as const;
const filePart = {
  type: 'input_file',
  filename: 'report.pdf',
  file_data: dataUrl('application/pdf', doc),
} as const;

describe('openai emulator: images and files', () => {
  it('takes input_image and input_file parts in the documented shapes and names what it saw', async () => {
    for (const part of [imagePart(red), filePart])
      expect(
        spec.validate(part.type === 'input_image' ? 'InputImageContent' : 'InputFileContent', part).errors,
      ).toEqual([]);
    const response = await client.responses.create({
      model: 'gpt-4.1-mini',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'look' }, imagePart(red), filePart] }],
    });
    expect(response.output_text).toContain(`saw 1 image, 1 file [img ${digest(red)}, file ${digest(doc)}]`);
  });

  it('keeps images in a conversation, so a later turn still sees them', async () => {
    const conversation = await client.conversations.create({
      items: [
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'a' }, imagePart(red)] },
      ],
    });
    const response = await client.responses.create({
      model: 'gpt-4.1-mini',
      conversation: conversation.id,
      input: [{ role: 'user', content: [imagePart(blue, 'low')] }],
    });
    expect(response.output_text).toContain(`saw 2 images, 0 files [img ${digest(red)}, img ${digest(blue)}]`);
  });

  it('takes image_url parts on Chat Completions', async () => {
    const part = {
      type: 'image_url',
      image_url: { url: dataUrl('image/png', blue), detail: 'low' },
    } as const;
    expect(spec.validate('ChatCompletionRequestMessageContentPartImage', part).errors).toEqual([]);
    const completion = await client.chat.completions.create({
      model: 'gpt-4.1-mini',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'look' }, part] }],
    });
    expect(completion.choices[0]?.message.content).toContain(`saw 1 image, 0 files [img ${digest(blue)}]`);
  });

  it('refuses malformed parts as OpenAI does', async () => {
    const refusal = (body: unknown) =>
      client.responses.create(body as never).then(
        () => undefined,
        (error: unknown) => error as InstanceType<typeof OpenAI.BadRequestError>,
      );
    const notData = await refusal({
      model: 'gpt-4.1-mini',
      input: [
        {
          role: 'user',
          content: [{ type: 'input_image', image_url: 'data:text/plain;base64,aGk=', detail: 'auto' }],
        },
      ],
    });
    expect(notData?.status).toBe(400);
    expect(notData?.param).toBe('input[0].content[0].image_url');
    const notImage = await refusal({
      model: 'gpt-4.1-mini',
      input: [
        {
          role: 'user',
          content: [{ type: 'input_image', image_url: dataUrl('image/png', doc), detail: 'auto' }],
        },
      ],
    });
    expect(notImage?.code).toBe('invalid_image_format');
    const noName = await refusal({
      model: 'gpt-4.1-mini',
      input: [
        { role: 'user', content: [{ type: 'input_file', file_data: dataUrl('application/pdf', doc) }] },
      ],
    });
    expect(noName?.code).toBe('missing_required_parameter');
    const badDetail = await client.chat.completions
      .create({
        model: 'gpt-4.1-mini',
        messages: [
          {
            role: 'user',
            content: [
              {
                type: 'image_url',
                image_url: { url: dataUrl('image/gif', gif(1)), detail: 'tiny' as 'low' },
              },
            ],
          },
        ],
      })
      .catch((error: unknown) => error as InstanceType<typeof OpenAI.BadRequestError>);
    expect((badDetail as InstanceType<typeof OpenAI.BadRequestError>).param).toBe(
      'messages[0].content[0].image_url.detail',
    );
  });

  it('has a model without vision that refuses images on both APIs, and answers text', async () => {
    const chat = await client.chat.completions
      .create({
        model: 'gpt-3.5-turbo',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'hi' },
              { type: 'image_url', image_url: { url: dataUrl('image/png', red) } },
            ],
          },
        ],
      })
      .catch((error: unknown) => error as InstanceType<typeof OpenAI.BadRequestError>);
    expect((chat as InstanceType<typeof OpenAI.BadRequestError>).status).toBe(400);
    expect((chat as Error).message).toContain('image_url is only supported by certain models');
    const responses = await client.responses
      .create({ model: 'gpt-3.5-turbo', input: [{ role: 'user', content: [imagePart(red)] }] })
      .catch((error: unknown) => error as Error);
    expect((responses as Error).message).toContain('input_image is only supported by certain models');
    const text = await client.responses.create({ model: 'gpt-3.5-turbo', input: 'hi' });
    expect(text.output_text).toContain('reply 1 to "hi"');
  });
});
