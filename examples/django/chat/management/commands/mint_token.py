"""`manage.py mint_token <user_id>`: prints a SimpleJWT access token that jetchat accepts."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework_simplejwt.tokens import AccessToken

from jetchat_django.tokens import access_token


class Command(BaseCommand):
    help = "Print an access token for USER_ID, signed with SIMPLE_JWT's SIGNING_KEY (jetchat's JWT_SECRET)."

    def add_arguments(self, parser):
        parser.add_argument("user_id", type=int)
        parser.add_argument("--minutes", type=int, default=None,
                            help="lifetime (default: SIMPLE_JWT's ACCESS_TOKEN_LIFETIME)")
        parser.add_argument("--name", default=None,
                            help="add the profile claims (name, avatar) jetchat records in its user directory")
        parser.add_argument("--avatar", default="", help="with --name: an http(s) URL")

    def handle(self, *args, user_id, minutes, name, avatar, **options):
        # The user need not be saved: SimpleJWT only reads its id, and jetchat only reads the
        # `user_id` claim (plus exp and token_type).
        user = get_user_model()(pk=user_id)
        if name is None:
            token = AccessToken.for_user(user)
        else:
            # What the login serializer adds, for a user with this name (JETCHAT["PROFILE"]).
            user.first_name, user.avatar_url = name, avatar
            token = access_token(user)
        if minutes is not None:
            token.set_exp(lifetime=timedelta(minutes=minutes))
        self.stdout.write(str(token))
