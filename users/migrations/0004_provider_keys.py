"""Several provider keys per user (``provider_keys``), replacing the one
OpenAI key on the profile.

Each stored profile key becomes the user's default OpenAI key, with its hint
and time. The ciphertext is copied as stored (never decrypted), so the move
needs no encryption key and loses nothing. Reversible: the default OpenAI key
goes back to the profile.
"""

import config.fields
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def profile_keys_to_provider_keys(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO provider_keys (created_at, updated_at, user_id, provider, label,"
            " base_url, encrypted_key, hint, is_default, status, last_verification,"
            " last_verification_detail)"
            " SELECT COALESCE(api_key_updated_at, created_at), COALESCE(api_key_updated_at,"
            " updated_at), user_id, 'openai', 'OpenAI', '', encrypted_api_key, api_key_hint,"
            " TRUE, 'active', '', '' FROM profiles WHERE encrypted_api_key <> ''"
        )


def provider_keys_to_profile_keys(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "UPDATE profiles SET encrypted_api_key = k.encrypted_key, api_key_hint = k.hint,"
            " api_key_updated_at = k.updated_at FROM provider_keys k"
            " WHERE k.user_id = profiles.user_id AND k.provider = 'openai' AND k.is_default"
            " AND k.status <> 'revoked'"
        )


class Migration(migrations.Migration):

    dependencies = [
        ('users', '0003_adopt_outstanding_tokens'),
    ]

    operations = [
        migrations.CreateModel(
            name='ProviderKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('provider', models.CharField(choices=[('openai', 'OpenAI'), ('anthropic', 'Anthropic'), ('azure_openai', 'Azure OpenAI'), ('google', 'Google (Gemini)'), ('openai_compatible', 'OpenAI-compatible')], max_length=32)),
                ('label', models.CharField(max_length=100)),
                ('base_url', models.URLField(blank=True, default='', help_text='Required for Azure and compatible.', max_length=500)),
                ('encrypted_key', config.fields.EncryptedTextField(blank=True, default='')),
                ('hint', models.CharField(help_text='Prefix and last four characters.', max_length=32)),
                ('is_default', models.BooleanField(default=False)),
                ('status', models.CharField(choices=[('active', 'Active'), ('invalid', 'Invalid (the provider refused it)'), ('revoked', 'Revoked (the secret is erased)')], default='active', max_length=16)),
                ('expires_at', models.DateTimeField(blank=True, null=True)),
                ('last_used_at', models.DateTimeField(blank=True, null=True)),
                ('last_verified_at', models.DateTimeField(blank=True, null=True)),
                ('last_verification', models.CharField(blank=True, choices=[('valid', 'Valid'), ('invalid', 'Refused by the provider'), ('unreachable', 'Provider unreachable')], default='', max_length=16)),
                ('last_verification_detail', models.CharField(blank=True, default='', max_length=200)),
                ('monthly_token_limit', models.PositiveBigIntegerField(blank=True, null=True)),
                ('monthly_cost_limit', models.DecimalField(blank=True, decimal_places=6, help_text='In USD.', max_digits=14, null=True)),
            ],
            options={
                'verbose_name': 'provider key',
                'db_table': 'provider_keys',
                'ordering': ['provider', '-is_default', '-created_at'],
            },
        ),
        migrations.AddField(
            model_name='profile',
            name='monthly_cost_limit',
            field=models.DecimalField(blank=True, decimal_places=6, help_text='In USD.', max_digits=14, null=True),
        ),
        migrations.AddField(
            model_name='profile',
            name='monthly_token_limit',
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name='profile',
            constraint=models.CheckConstraint(condition=models.Q(('monthly_cost_limit__isnull', True), ('monthly_cost_limit__gte', 0), _connector='OR'), name='profiles_cost_limit_not_negative'),
        ),
        migrations.AddField(
            model_name='providerkey',
            name='user',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='provider_keys', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='apikeyaccesslog',
            name='key',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='reads', to='users.providerkey'),
        ),
        migrations.AddIndex(
            model_name='providerkey',
            index=models.Index(fields=['user', 'provider'], name='provider_keys_user_provider'),
        ),
        migrations.AddConstraint(
            model_name='providerkey',
            constraint=models.UniqueConstraint(condition=models.Q(('is_default', True)), fields=('user', 'provider'), name='provider_keys_one_default_per_provider'),
        ),
        migrations.AddConstraint(
            model_name='providerkey',
            constraint=models.CheckConstraint(condition=models.Q(('provider__in', ['openai', 'anthropic', 'azure_openai', 'google', 'openai_compatible'])), name='provider_keys_provider_valid'),
        ),
        migrations.AddConstraint(
            model_name='providerkey',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['active', 'invalid', 'revoked'])), name='provider_keys_status_valid'),
        ),
        migrations.AddConstraint(
            model_name='providerkey',
            constraint=models.CheckConstraint(condition=models.Q(('last_verification__in', ['', 'valid', 'invalid', 'unreachable'])), name='provider_keys_verification_valid'),
        ),
        migrations.AddConstraint(
            model_name='providerkey',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('encrypted_key', ''), ('status', 'revoked')), models.Q(models.Q(('status', 'revoked'), _negated=True), models.Q(('encrypted_key', ''), _negated=True)), _connector='OR'), name='provider_keys_secret_unless_revoked'),
        ),
        migrations.AddConstraint(
            model_name='providerkey',
            constraint=models.CheckConstraint(condition=models.Q(('is_default', True), ('status', 'revoked'), _negated=True), name='provider_keys_revoked_not_default'),
        ),
        migrations.AddConstraint(
            model_name='providerkey',
            constraint=models.CheckConstraint(condition=models.Q(('base_url', ''), ('provider__in', ('azure_openai', 'openai_compatible')), _negated=True), name='provider_keys_base_url_where_needed'),
        ),
        migrations.AddConstraint(
            model_name='providerkey',
            constraint=models.CheckConstraint(condition=models.Q(('label', ''), _negated=True), name='provider_keys_label_not_empty'),
        ),
        migrations.AddConstraint(
            model_name='providerkey',
            constraint=models.CheckConstraint(condition=models.Q(('monthly_cost_limit__isnull', True), ('monthly_cost_limit__gte', 0), _connector='OR'), name='provider_keys_cost_limit_not_negative'),
        ),
        migrations.RunPython(profile_keys_to_provider_keys, provider_keys_to_profile_keys),
        migrations.RemoveConstraint(
            model_name='profile',
            name='profiles_api_key_hint_matches_key',
        ),
        migrations.RemoveField(
            model_name='profile',
            name='api_key_hint',
        ),
        migrations.RemoveField(
            model_name='profile',
            name='api_key_updated_at',
        ),
        migrations.RemoveField(
            model_name='profile',
            name='encrypted_api_key',
        ),
    ]
